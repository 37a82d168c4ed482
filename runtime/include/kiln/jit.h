/// @file
/// The hook through which a JIT (runtime/jit, a later library) serves guard
/// misses under Stance::fallback. The runtime itself never compiles: with no
/// JitCompiler registered a miss is a NoSpecializationError.
///
/// A JIT hands back a JitSpecialization: the guards of the calls it serves
/// and a way to run them. The runtime keeps it with the graph and checks it
/// after the package's own specializations, so the next call with those
/// shapes is a hit that never reaches the JIT. It keeps at most
/// JitCompiler::max_adopted_entries() of them per graph.
///
/// What an application needs to register a JIT; kiln/runtime.h does not
/// include it. The launchers a JIT runs its compiled code through are in
/// kiln/jit_launchers.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <dlpack/dlpack.h>

#include "kiln/error.h"

namespace kiln {

class PackageReader;
// The package's launchers (kiln/jit_launchers.h): only a JIT that runs what
// it compiled calls them, so an application that registers one does not
// parse them (nor the gemm and kernel ABI they take).
class CpuKernelLauncher;
class CudaKernelLauncher;

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
  /// How many specializations from this JIT a graph keeps (read when the
  /// runtime adopts one): past it the least recently used is dropped
  /// (GraphCounters::jit_evictions), and a later call with its shapes asks
  /// the JIT again. The default: nullopt, every one is kept.
  virtual std::optional<size_t> max_adopted_entries() const;
};

/// Process-wide; nullptr (the default) means no JIT. The compiler must
/// outlive every call that may reach it.
void set_jit_compiler(JitCompiler* compiler) noexcept;
/// The registered JitCompiler, or nullptr.
JitCompiler* jit_compiler() noexcept;

}  // namespace kiln
