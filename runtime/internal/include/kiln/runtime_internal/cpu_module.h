// A CPU shared object loaded from memory: memfd_create + dlopen, or a temp
// file when memfd is not available. Unloaded (dlclose) on destruction.
#pragma once

#include <span>
#include <string>

#include "kiln/abi/cpu_kernel.h"

namespace kiln::detail {

class CpuModule {
 public:
  // Throws Error(kernel_load_failed) with dlerror's text; `label` names the
  // blob in messages.
  CpuModule(std::span<const std::byte> image, const std::string& label);
  ~CpuModule();
  CpuModule(const CpuModule&) = delete;
  CpuModule& operator=(const CpuModule&) = delete;

  // Throws Error(kernel_load_failed) naming the kernel when it is missing.
  KilnCpuKernelFn resolve(const char* entry, const std::string& kernel_name) const;

 private:
  void* handle_ = nullptr;
  // Kept open while loaded: glibc dedups dlopen by path, and a reused
  // /proc/self/fd/N would otherwise name a different, already loaded object.
  int fd_ = -1;
  std::string label_;
};

}  // namespace kiln::detail
