// Lowers one specialization of a graph to C++ kernels for a CPU target: the
// schedule's fused groups become one kernel each, plus the launch plan that
// runs them. The same path serves the build and (later) the JIT.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/compiler/ir.h"
#include "kiln/compiler/size_expr.h"

namespace kiln::compiler {

enum class BufferRole : uint8_t { input = 0, output = 1, temp = 2 };  // = kiln.fb.BufferRole

struct PlanBuffer {
  BufferRole role;
  uint32_t index;  // input/output position, or temp ordinal
  DType dtype;
  SizeExpr numel;
};

struct CpuKernel {
  std::string entry;   // exported C symbol, unique in the package
  std::string source;  // one complete C++ translation unit, deterministic text
};

struct CpuLaunch {
  uint32_t kernel;                // index into CpuLoweredGraph::kernels
  std::vector<uint32_t> buffers;  // indices into CpuLoweredGraph::buffers, in argument order
  SizeExpr work_items;
  SizeExpr item_cost;
};

// Names the CPU codegen in every key (the generator's and the JIT's); bumped
// when the generated text changes for the same graph (v2: reductions of a
// whole rank-1 tensor are standalone kernels).
inline constexpr const char* kCpuCodegenVersion = "cpu-codegen-v2";

struct CpuLoweredGraph {
  std::vector<PlanBuffer> buffers;
  std::vector<CpuKernel> kernels;
  std::vector<CpuLaunch> launches;
};

struct CpuCodegenOptions {
  std::string entry_prefix;  // e.g. "kiln_rmsnorm_3fa2c1d0": kernels are <prefix>_k<i>
};

// `static_values[s]` >= 0 fixes symbol s (a static specialization); -1 keeps it
// dynamic (read from KilnCpuKernelArgs::symbols at run time).
CpuLoweredGraph lower_cpu(const ir::Graph& g, const ir::SymbolValues& static_values,
                          const CpuCodegenOptions& options);

// The translation unit that exports kiln_cpu_abi_version(); one per shared object.
std::string cpu_abi_source();

// clang++ flags for a CPU target arch ("x86-64", "x86-64-v3", ...).
std::vector<std::string> cpu_compile_flags(const std::string& arch);

}  // namespace kiln::compiler
