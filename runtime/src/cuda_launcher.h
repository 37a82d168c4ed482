// Runs CUDA kernels of one package: per device, picks the package's target
// for its compute capability, loads modules into the device's primary context
// on first use, launches on the caller's stream and hands out workspace.
// Nothing touches the driver until a CUDA tensor shows up, so a package opens
// and runs its CPU graphs on machines without one.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cuda_driver.h"
#include "kiln/abi/kiln_package_generated.h"
#include "kiln/device_allocator.h"
#include "kiln/jit_launchers.h"
#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "kiln/runtime_internal/gemm_plan.h"

namespace kiln::detail {

class CublasLtGemm;

// Devices are kept in a fixed array, so that finding one is an index.
inline constexpr int kMaxCudaDevices = 64;

// The package target to run on a device of `compute_capability` (major * 10 +
// minor), and whether through its PTX: a cubin of the same major and an arch
// no newer than the device (the highest such), else the PTX of a target no
// newer than the device (the generator gives PTX to the newest arch only),
// else nullopt.
std::optional<std::pair<uint32_t, bool>> choose_cuda_target(const fb::Manifest& manifest,
                                                            int compute_capability);

struct CudaDeviceInfo {
  int ordinal = -1;
  int compute_capability = 0;      // major * 10 + minor, e.g. 90
  std::optional<uint32_t> target;  // the package target run on this device; nullopt: none fits
  bool via_ptx = false;            // target's cubin does not run here; its PTX is JIT-compiled
  std::string name;                // "NVIDIA H200"
};

class CudaLauncher final : public CudaKernelLauncher {
 public:
  CudaLauncher(const PackageReader& reader, const OpenOptions& options);
  // Unloads modules (with the device's primary context current) and releases
  // the primary contexts. Never throws.
  ~CudaLauncher();
  CudaLauncher(const CudaLauncher&) = delete;
  CudaLauncher& operator=(const CudaLauncher&) = delete;

  bool package_has_cuda_targets() const noexcept { return !cuda_targets_text_.empty(); }

  // First call per ordinal: loads the driver, queries the device, picks the
  // target and retains the primary context (when a target fits). Later
  // calls: an array lookup, no lock. Throws Error(cuda_unavailable) without a
  // driver; Error(invalid_argument) for an ordinal the machine does not have.
  const CudaDeviceInfo& device(int ordinal);
  // Error(kernel_load_failed): "kiln: cuda:0 is NVIDIA X (sm_75); none of the
  // package's CUDA targets (cuda:sm_80, cuda:sm_90) runs on it".
  [[noreturn]] void throw_no_target(const CudaDeviceInfo& info) const;

  // The CUfunction of manifest kernel `kernel_index` on the device, loading
  // its module on first use per (device, blob): the kernel's cubin, or its
  // PTX when info.via_ptx. Thread-safe; lock-free once loaded. Throws
  // Error(kernel_load_failed) naming the kernel, the blob and the driver's
  // result (and for PTX, the JIT log). A kernel whose launches ask for more
  // than 48 KiB of dynamic shared memory gets its limit raised here, to the
  // most any launch in the manifest asks, so launch() stays one driver call.
  void* function(int ordinal, uint32_t kernel_index);

  // Makes the device's primary context current for its lifetime: pushes it
  // only when another context (or none) is current, pops on destruction.
  // Launches, allocations and module loads need one.
  class ContextScope {
   public:
    ContextScope(ContextScope&& other) noexcept : driver_(std::exchange(other.driver_, nullptr)) {}
    ContextScope& operator=(ContextScope&&) = delete;
    ContextScope(const ContextScope&) = delete;
    ContextScope& operator=(const ContextScope&) = delete;
    ~ContextScope();

   private:
    friend class CudaLauncher;
    explicit ContextScope(const CudaDriver* pushed_by) : driver_(pushed_by) {}
    const CudaDriver* driver_;  // non-null: this scope pushed, and pops
  };
  // Throws like device(), throw_no_target() when no target fits, or
  // Error(cuda_error) when the context cannot be made current.
  ContextScope enter(int ordinal);

  struct LaunchDims {
    uint32_t grid[3];
    uint32_t block[3];
    uint32_t shared_bytes;
  };
  // cuLaunchKernel on `stream` (a CUstream of the device's primary context;
  // nullptr: the legacy default stream), kernelParams = params. A grid with
  // a zero dimension (empty tensors) launches nothing. Throws
  // CudaError(graph, kernel, result, ...) when the driver refuses; a sticky
  // result (a fault) there comes from an earlier kernel, and the message says
  // so. When synchronizing (OpenOptions::cuda_synchronize or KILN_CUDA_SYNC=1,
  // read once at construction) the stream is synchronized after the launch,
  // and a fault is a CudaError naming this kernel.
  void launch(int ordinal, void* function, const LaunchDims& dims, void* stream, void** params,
              std::string_view graph, std::string_view kernel);

  // Workspace from options.device_allocator, or stream_ordered_allocator().
  // Zero bytes give nullptr without asking the allocator. Throws what the
  // allocator throws, or Error(invalid_argument) when it gives NULL or a
  // pointer not 256-byte aligned (which it gets back first). Both need the
  // device's context current (enter()) for the default allocator.
  void* allocate(int ordinal, size_t bytes, void* stream);
  void deallocate(int ordinal, void* ptr, size_t bytes, void* stream) noexcept;

  // CudaKernelLauncher, for JIT-compiled kernels: their modules are kept per
  // device and unloaded with the package's.
  void* load_function(int ordinal, std::span<const std::byte> cubin, const char* entry,
                      uint32_t max_shared_bytes, std::string_view label) override;
  void launch_kernel(int ordinal, void* function, const uint32_t grid[3], const uint32_t block[3],
                     uint32_t shared_bytes, void* stream, void** params, std::string_view graph,
                     std::string_view kernel) override;
  void* allocate_workspace(int ordinal, size_t bytes, void* stream) override {
    return allocate(ordinal, bytes, stream);
  }
  void release_workspace(int ordinal, void* ptr, size_t bytes, void* stream) noexcept override {
    deallocate(ordinal, ptr, bytes, stream);
  }
  // Gemm launches, the package's and the JIT's (cublaslt_gemm.cpp).
  size_t gemm_workspace_bytes(int ordinal) override;
  void run_gemm(int ordinal, const GemmProblem& problem, const GemmOperands& operands, void* stream,
                std::string_view graph, std::string_view launch) override;
  // The device's cuBLASLt (handle and algorithm cache), created on first
  // use in its primary context; nullptr before. For tests and counters.
  const CublasLtGemm* gemm_state(int ordinal) const noexcept;

 private:
  struct DeviceSlot;
  DeviceSlot& slot(int ordinal);
  DeviceSlot& initialize(int ordinal);
  ContextScope enter(const DeviceSlot& slot);
  void* load_function(DeviceSlot& slot, uint32_t kernel_index);
  CUmodule load_module(const DeviceSlot& slot, uint32_t blob_index, const std::string& kernel_name);
  // cuModuleLoadDataEx of a cubin or NUL-terminated PTX, with its JIT log in
  // the error.
  CUmodule load_image(const DeviceSlot& slot, const void* image, const std::string& label,
                      std::string_view kernel_name);
  void raise_shared_limit(const DeviceSlot& slot, CUfunction function, uint32_t shared,
                          std::string_view kernel_name);
  // The device's cuBLASLt, loading the library and creating the handle on
  // first use. Thread-safe; lock-free once created.
  CublasLtGemm& gemm(int ordinal, const GemmSite& site);
  // k = 0: D = epilogue(bias or 0), A and B unread.
  void run_empty_product(int ordinal, const GemmProblem& problem, const GemmOperands& operands,
                         void* stream, const GemmSite& site);
  // After a gemm, when synchronizing (KILN_CUDA_SYNC): a fault is a
  // CudaError naming the launch.
  void synchronize_after(int ordinal, void* stream, const GemmSite& site);

  const PackageReader& reader_;
  DeviceAllocator* allocator_;
  bool synchronize_;
  std::string cuda_targets_text_;  // "cuda:sm_80, cuda:sm_90"
  uint32_t kernel_count_ = 0;
  // By kernel: the most dynamic shared memory any launch of it asks for;
  // empty for a package without CUDA targets.
  std::vector<uint32_t> max_shared_bytes_;

  std::mutex init_mutex_;  // first use of each device
  int device_count_ = -1;  // under init_mutex_; -1: not asked yet
  std::array<std::unique_ptr<DeviceSlot>, kMaxCudaDevices> owned_slots_;  // under init_mutex_
  // Published once initialized, so that a warm lookup takes no lock.
  std::array<std::atomic<DeviceSlot*>, kMaxCudaDevices> slots_{};

  std::mutex gemm_mutex_;  // first gemm of each device
  // Destroyed by ~CudaLauncher in the device's context, before it is released.
  std::array<std::unique_ptr<CublasLtGemm>, kMaxCudaDevices> owned_gemms_;  // under gemm_mutex_
  std::array<std::atomic<CublasLtGemm*>, kMaxCudaDevices> gemms_{};
};

}  // namespace kiln::detail
