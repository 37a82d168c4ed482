/// @file
/// The hook through which a JIT (runtime/jit, a later library) serves guard
/// misses under Stance::fallback. The runtime itself never compiles: with no
/// JitCompiler registered a miss is a NoSpecializationError.
///
/// A JIT hands back a JitSpecialization: the guards of the calls it serves
/// and a way to run them. The runtime keeps it with the graph and checks it
/// after the package's own specializations, so the next call with those
/// shapes is a hit that never reaches the JIT.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include <dlpack/dlpack.h>

#include "kiln/abi/cpu_kernel.h"
#include "kiln/error.h"
#include "kiln/gemm.h"

namespace kiln {

class PackageReader;

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

/// One call to run on a JIT-compiled specialization whose guards passed.
struct JitCall {
  std::span<const DLTensor* const> inputs;   ///< the call's inputs
  std::span<const DLTensor* const> outputs;  ///< the call's outputs
  void* stream;                              ///< the call's CUstream (CUDA calls)
  /// One per graph symbol, bound by the guards: what a dynamic kernel reads.
  const int64_t* symbols;
  CpuKernelLauncher* cpu = nullptr;    ///< the package's CPU launcher
  CudaKernelLauncher* cuda = nullptr;  ///< the package's CUDA launcher, for a CUDA call
  int cuda_ordinal = 0;                ///< the device of a CUDA call
};

/// A specialization a JIT compiled: the guards of the calls it serves, and a way to run them.
class JitSpecialization {
 public:
  virtual ~JitSpecialization() = default;
  /// A finished FlatBuffer whose root is a kiln.fb.Specialization: its name
  /// and the guards that admit exactly the calls it serves (its plan and
  /// kernels are the JIT's own business).
  virtual std::span<const uint8_t> specialization() const noexcept = 0;
  /// Runs one call whose guards passed; throws kiln::Error.
  virtual void run(const JitCall& call) const = 0;
};

/// A call no specialization of the package fits, handed to the JitCompiler.
struct JitRequest {
  /// The package (its IR is what a JIT compiles from).
  const PackageReader& package;
  /// The graph called.
  std::string_view graph;
  std::span<const DLTensor* const> inputs;   ///< the call's inputs
  std::span<const DLTensor* const> outputs;  ///< the call's outputs
  void* stream;                              ///< the call's CUstream (CUDA calls)
  /// Why every precompiled specialization was refused.
  const std::vector<GuardFailure>& failures;
  /// The package's CPU launcher; null only where a caller builds a request by
  /// hand.
  CpuKernelLauncher* cpu = nullptr;
  /// The package's CUDA launcher, for a call on a CUDA device; null otherwise.
  CudaKernelLauncher* cuda = nullptr;
  int cuda_ordinal = 0;        ///< the device of a CUDA call
  int compute_capability = 0;  ///< major * 10 + minor of that device
  /// The arch of the package's CUDA target whose cubins run on that device
  /// ("sm_80"), so an export merges into it; empty when none does (or only
  /// through PTX), and the JIT compiles for the device's own arch.
  std::string_view cuda_arch;
  /// The package's CPU target this machine runs ("x86-64-v3"); empty when
  /// the package has none, and the JIT picks its own level.
  std::string_view cpu_arch;
};

/// Serves guard misses under Stance::fallback: registered with set_jit_compiler
/// (kiln::jit::install() registers Kiln's FallbackJit, docs/jit.md).
class JitCompiler {
 public:
  virtual ~JitCompiler() = default;
  /// The specialization serving this call, compiled now or taken from a
  /// cache; the runtime then runs it. nullptr declines the call. Errors are
  /// thrown as kiln::Error. Threads missing one key may get the same object.
  virtual std::shared_ptr<const JitSpecialization> compile(const JitRequest& request) = 0;
  /// Writes what this JIT compiled for `package` (by its checksum) as a delta
  /// package for `kiln merge`; returns the number of specializations written.
  /// The default: Error(invalid_argument), this JIT cannot export.
  virtual size_t export_compiled(const PackageReader& package, const std::filesystem::path& path);
};

/// Process-wide; nullptr (the default) means no JIT. The compiler must
/// outlive every call that may reach it.
void set_jit_compiler(JitCompiler* compiler) noexcept;
/// The registered JitCompiler, or nullptr.
JitCompiler* jit_compiler() noexcept;

}  // namespace kiln
