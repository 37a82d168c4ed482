// Runs CPU kernels of one package: picks the package's best CPU target for
// this machine, loads its shared object on first use, resolves kernel entry
// points, and splits each launch's work items across the thread pool.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kiln/abi/cpu_kernel.h"
#include "kiln/jit_launchers.h"
#include "kiln/package_reader.h"
#include "kiln/runtime_internal/cpu_module.h"
#include "thread_pool.h"

namespace kiln::detail {

// Launches touching fewer elements run on the caller's thread: waking
// workers costs more than the work.
inline constexpr int64_t kInlineLaunchElements = 64 * 1024;
// Elements per chunk of a parallel launch.
inline constexpr int64_t kChunkElements = 32 * 1024;

// final: the runtime's own calls to launch() are not virtual.
class CpuLauncher final : public CpuKernelLauncher {
 public:
  CpuLauncher(const PackageReader& reader, int num_threads);
  ~CpuLauncher();

  // The package's best CPU target this machine runs, if any.
  std::optional<uint32_t> target() const noexcept { return target_; }
  bool package_has_cpu_targets() const noexcept { return !cpu_targets_text_.empty(); }
  // Error(kernel_load_failed): no CPU target of the package runs here.
  [[noreturn]] void throw_no_target() const;

  // Loads the kernel's shared object on first use. Thread-safe.
  KilnCpuKernelFn kernel(uint32_t kernel_index);

  void launch(KilnCpuKernelFn fn, const KilnCpuKernelArgs& args, int64_t work_items,
              int64_t item_cost) override;

 private:
  ThreadPool& pool();

  const PackageReader& reader_;
  std::optional<uint32_t> target_;
  std::string cpu_targets_text_;
  unsigned threads_;

  std::mutex modules_mutex_;
  std::vector<std::unique_ptr<CpuModule>> modules_;  // by blob index

  std::once_flag pool_once_;
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace kiln::detail
