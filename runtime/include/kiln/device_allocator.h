/// @file
/// Device memory for the intermediates of CUDA calls. A framework that owns
/// the GPU's memory (PyTorch's caching allocator, a serving engine's arena)
/// plugs in here, so Kiln's temps come out of the same budget as everything
/// else instead of fragmenting a second pool behind its back.
#pragma once

#include <cstddef>

namespace kiln {

/// Temp buffers of one call. The runtime asks for all of a call's temps at
/// once, right before its kernels are enqueued, and hands them back right
/// after, without waiting for the kernels: memory is stream-ordered, as in
/// cuMemFreeAsync. Both calls happen with the device's primary context
/// current. Implementations must be thread-safe: calls on one package may run
/// concurrently.
class DeviceAllocator {
 public:
  virtual ~DeviceAllocator() = default;
  /// At least `bytes` (> 0) bytes on CUDA device `device` (ordinal), usable by
  /// work enqueued on `stream` (a CUstream; nullptr is the legacy default
  /// stream), aligned to 256 bytes. Throws kiln::Error on failure.
  virtual void* allocate(size_t bytes, int device, void* stream) = 0;
  /// Called right after the call's kernels are enqueued on `stream`: the
  /// memory may be reused by later work on that stream only (stream-ordered),
  /// as PyTorch's caching allocator and cuMemFreeAsync do.
  virtual void deallocate(void* ptr, size_t bytes, int device, void* stream) noexcept = 0;
};

/// The default: cuMemAllocAsync / cuMemFreeAsync on the call's stream, from
/// the device's current memory pool, which hands freed memory to the next
/// call without a device-wide synchronization (cuMemAlloc/cuMemFree would
/// synchronize). Its release threshold is left as the application set it.
/// Throws Error(cuda_error) when the pool cannot give the memory
/// (cuda_unavailable without a driver).
DeviceAllocator& stream_ordered_allocator();

}  // namespace kiln
