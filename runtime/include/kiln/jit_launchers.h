/// @file
/// The package's CPU and CUDA launchers as a JIT sees them: a JitCall or
/// JitRequest (kiln/jit.h) hands them over so that compiled code runs on the
/// package's thread pool, in its CUDA context, with its allocator and launch
/// checks, as precompiled code does. The runtime implements them; only a JIT
/// calls them, so neither kiln/runtime.h nor kiln/jit.h includes this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "kiln/abi/cpu_kernel.h"
#include "kiln/gemm.h"

namespace kiln {

/// Runs one launch of a CPU kernel the way precompiled kernels run: split in
/// chunks over the package's thread pool, returning when every chunk ran.
/// Given to the JIT so compiled code shares the pool instead of starting one.
class CpuKernelLauncher {
 public:
  /// Runs fn over [0, work_items) in chunks sized by item_cost; returns when all ran.
  virtual void launch(KilnCpuKernelFn fn, const KilnCpuKernelArgs& args, int64_t work_items,
                      int64_t item_cost) = 0;

 protected:
  ~CpuKernelLauncher() = default;
};

/// The package's CUDA side, given to the JIT so compiled kernels run in the
/// same primary context, with the same allocator and launch checks, as
/// precompiled ones. Every call needs the device's context current: the
/// runtime makes it so before JitSpecialization::run and JitCompiler::compile
/// see a CUDA call.
class CudaKernelLauncher {
 public:
  /// Unique per launcher in the process, never reused (unlike its address):
  /// what a JIT keys the code it loaded through this launcher by.
  uint64_t instance_id() const noexcept { return instance_id_; }

  /// A cubin loaded into the device's primary context; unloaded with the
  /// package. Returns the CUfunction of `entry`; `max_shared_bytes` above 48
  /// KiB raises the function's dynamic shared memory limit. Throws
  /// Error(kernel_load_failed) naming `label` and the driver's result.
  virtual void* load_function(int ordinal, std::span<const std::byte> cubin, const char* entry,
                              uint32_t max_shared_bytes, std::string_view label) = 0;
  /// cuLaunchKernel of `function` on `stream`; throws CudaError like a
  /// precompiled launch.
  virtual void launch_kernel(int ordinal, void* function, const uint32_t grid[3],
                             const uint32_t block[3], uint32_t shared_bytes, void* stream,
                             void** params, std::string_view graph, std::string_view kernel) = 0;
  /// Device memory for a call's temps, from the package's DeviceAllocator.
  virtual void* allocate_workspace(int ordinal, size_t bytes, void* stream) = 0;
  /// Gives allocate_workspace()'s memory back, stream-ordered.
  virtual void release_workspace(int ordinal, void* ptr, size_t bytes, void* stream) noexcept = 0;

  /// Library calls (KernelLaunch.library_call). The cuBLASLt workspace a
  /// plan with gemm launches adds to its workspace allocation on this device
  /// (one per call, shared by its gemms, which stream order serializes):
  /// 32 MiB on sm_90 and newer, 4 MiB before. Throws like a launch when the
  /// device cannot be queried.
  virtual size_t gemm_workspace_bytes(int ordinal) = 0;
  /// One gemm on `stream` through cuBLASLt, in the device's primary context
  /// (current, as for every call here). First checks that each operand holds
  /// what the problem reads or writes (Error(invalid_argument) naming the
  /// operand, expected against actual); an empty D runs nothing, k = 0
  /// writes epilogue(0) without reading A or B. Loads cuBLASLt on first use:
  /// Error(library_unavailable) naming `graph` when it cannot. Error(cuda_error)
  /// when cuBLASLt has no algorithm or refuses the gemm; `launch` ("launch 1
  /// (gemm)") names it in every message.
  virtual void run_gemm(int ordinal, const GemmProblem& problem, const GemmOperands& operands,
                        void* stream, std::string_view graph, std::string_view launch) = 0;

 protected:
  /// Takes the next instance_id().
  CudaKernelLauncher() noexcept;
  ~CudaKernelLauncher() = default;

 private:
  uint64_t instance_id_;
};

}  // namespace kiln
