// The hook through which a JIT (runtime/jit, a later library) serves guard
// misses under Stance::fallback. The runtime itself never compiles: with no
// JitCompiler registered a miss is a NoSpecializationError.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include <dlpack/dlpack.h>

#include "kiln/abi/cpu_kernel.h"
#include "kiln/error.h"

namespace kiln {

class PackageReader;

// Runs one launch of a CPU kernel the way precompiled kernels run: split in
// chunks over the package's thread pool, returning when every chunk ran.
// Given to the JIT so compiled code shares the pool instead of starting one.
class CpuKernelLauncher {
 public:
  virtual void launch(KilnCpuKernelFn fn, const KilnCpuKernelArgs& args, int64_t work_items,
                      int64_t item_cost) = 0;

 protected:
  ~CpuKernelLauncher() = default;
};

struct JitRequest {
  const PackageReader& package;
  std::string_view graph;
  std::span<const DLTensor* const> inputs;
  std::span<const DLTensor* const> outputs;
  void* stream;
  // Why every precompiled specialization was refused.
  const std::vector<GuardFailure>& failures;
  // The package's CPU launcher; null only where a caller builds a request by
  // hand.
  CpuKernelLauncher* cpu = nullptr;
};

class JitCompiler {
 public:
  virtual ~JitCompiler() = default;
  // Compiles (or fetches from a cache) a specialization for this call and
  // runs it. Returns false to decline; errors are thrown as kiln::Error.
  virtual bool compile_and_run(const JitRequest& request) = 0;
};

// Process-wide; nullptr (the default) means no JIT. The compiler must
// outlive every call that may reach it.
void set_jit_compiler(JitCompiler* compiler) noexcept;
JitCompiler* jit_compiler() noexcept;

}  // namespace kiln
