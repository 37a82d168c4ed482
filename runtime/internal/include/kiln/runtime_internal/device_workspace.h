// Device memory for one call's temps or a library call's scratch, given
// back when the call leaves scope, also when a launch throws. Release is
// stream-ordered, so the kernels already enqueued on the stream still see
// the memory: the runtime's CUDA plans, its gemms and the JIT's CUDA
// specializations all hold their workspace this way.
#pragma once

#include <cstddef>

#include "kiln/jit_launchers.h"

namespace kiln::detail {

class DeviceWorkspace {
 public:
  // Throws what launcher.allocate_workspace throws; zero bytes hold nullptr.
  DeviceWorkspace(CudaKernelLauncher& launcher, int ordinal, size_t bytes, void* stream)
      : launcher_(launcher), ordinal_(ordinal), bytes_(bytes), stream_(stream) {
    data_ = launcher.allocate_workspace(ordinal, bytes, stream);
  }
  ~DeviceWorkspace() {
    if (data_ != nullptr) launcher_.release_workspace(ordinal_, data_, bytes_, stream_);
  }
  DeviceWorkspace(const DeviceWorkspace&) = delete;
  DeviceWorkspace& operator=(const DeviceWorkspace&) = delete;
  DeviceWorkspace(DeviceWorkspace&&) = delete;
  DeviceWorkspace& operator=(DeviceWorkspace&&) = delete;

  std::byte* data() const { return static_cast<std::byte*>(data_); }

 private:
  CudaKernelLauncher& launcher_;
  int ordinal_;
  size_t bytes_;
  void* stream_;
  void* data_ = nullptr;
};

}  // namespace kiln::detail
