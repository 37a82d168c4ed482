#include "kiln/device_allocator.h"

#include <cstdint>

#include "cuda_driver.h"
#include "kiln/error.h"
#include "text.h"

namespace kiln {
namespace {

using detail::cat;

class StreamOrderedAllocator final : public DeviceAllocator {
 public:
  void* allocate(size_t bytes, int device, void* stream) override {
    detail::CudaDriver& cu = detail::CudaDriver::get();
    detail::CUdeviceptr pointer = 0;
    const detail::CUresult result =
        cu.cuMemAllocAsync(&pointer, bytes, static_cast<detail::CUstream>(stream));
    if (result != detail::kCudaSuccess) {
      throw Error(ErrorCode::cuda_error,
                  cat("kiln: cuMemAllocAsync of ", bytes, " bytes on cuda:", device,
                      " failed: ", detail::result_text(result),
                      result == detail::kCudaErrorNotSupported
                          ? "; the device has no memory pools: set OpenOptions::device_allocator"
                          : ""));
    }
    // A CUdeviceptr is an address in the process's unified address space.
    return reinterpret_cast<void*>(pointer);  // NOLINT(performance-no-int-to-ptr)
  }

  void deallocate(void* ptr, size_t /*bytes*/, int /*device*/, void* stream) noexcept override {
    if (ptr == nullptr) return;
    try {
      // Ignored on failure: it means the context is already broken, which
      // the next launch or the caller's synchronization reports.
      detail::CudaDriver::get().cuMemFreeAsync(
          static_cast<detail::CUdeviceptr>(reinterpret_cast<uintptr_t>(ptr)),
          static_cast<detail::CUstream>(stream));
    } catch (const Error&) {
      // No driver: nothing was allocated through it.
    }
  }
};

}  // namespace

DeviceAllocator& stream_ordered_allocator() {
  static StreamOrderedAllocator allocator;
  return allocator;
}

}  // namespace kiln
