// Lowers one specialization of a graph to CUDA kernels: the schedule's fused
// groups become one `extern "C" __global__` kernel each (ABI in
// schemas/include/kiln/abi/cuda_kernel.h), plus the launch plan with grids as
// expressions of the graph's symbols. The same path serves the build (nvcc)
// and the JIT (NVRTC).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/ir.h"
#include "kiln/compiler/size_expr.h"

namespace kiln::compiler {

struct CudaKernel {
  std::string entry;   // extern "C" kernel name, unique in the package
  std::string source;  // one complete .cu translation unit, deterministic text
};

struct CudaLaunch {
  uint32_t kernel;                // index into CudaLoweredGraph::kernels
  std::vector<uint32_t> buffers;  // indices into CudaLoweredGraph::buffers, in argument order
  std::array<SizeExpr, 3> grid = {SizeExpr::constant(1), SizeExpr::constant(1),
                                  SizeExpr::constant(1)};
  std::array<uint32_t, 3> block = {1, 1, 1};
  uint32_t shared_bytes = 0;  // dynamic shared memory (the kernels use static shared memory)
};

struct CudaLoweredGraph {
  std::vector<PlanBuffer> buffers;
  std::vector<CudaKernel> kernels;
  std::vector<CudaLaunch> launches;
  // Some kernel moves 16-byte vectors, so the code depends on the
  // aligned16 option; otherwise it is the same either way.
  bool vectorized = false;
};

struct CudaCodegenOptions {
  std::string entry_prefix;  // kernels are <prefix>_k<i>
  // Every buffer's address is a multiple of 16 bytes (the specialization's
  // guards check it), so rows whose width allows it move in 16-byte vectors.
  bool aligned16 = true;
};

CudaLoweredGraph lower_cuda(const ir::Graph& g, const ir::SymbolValues& static_values,
                            const CudaCodegenOptions& options);

// nvcc flags for a cubin of `arch` ("sm_90"); throws std::invalid_argument
// for anything but sm_<NN>.
std::vector<std::string> cuda_compile_flags(const std::string& arch);

}  // namespace kiln::compiler
