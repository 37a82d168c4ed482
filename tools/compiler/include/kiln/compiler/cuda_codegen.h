// Lowers one specialization of a graph to CUDA kernels: the schedule's fused
// groups become one `extern "C" __global__` kernel each (ABI in
// schemas/include/kiln/abi/cuda_kernel.h), plus the launch plan with grids as
// expressions of the graph's symbols. The same path serves the build (nvcc)
// and the JIT (NVRTC).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/abi/library_call.h"  // kNoKernel: CudaLaunch::kernel of a library call
#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/ir.h"
#include "kiln/compiler/size_expr.h"

namespace kiln::compiler {

struct CudaKernel {
  std::string entry;   // extern "C" kernel name, unique in the package
  std::string source;  // one complete .cu translation unit, deterministic text
};

// Numeric values equal kiln.fb.GemmEpilogue.
enum class GemmEpilogue : uint8_t { none = 0, bias = 1, relu = 2, bias_relu = 3 };

// A launch through cuBLASLt instead of a generated kernel: the compiler-side
// twin of kiln.fb.GemmCall (its comment in schemas/kiln_package.fbs gives
// the semantics). Buffers: A, B, D, then the bias when the epilogue has one.
struct GemmLaunch {
  DType a_dtype = DType::f32;
  DType b_dtype = DType::f32;
  DType d_dtype = DType::f32;
  SizeExpr m, n, k, batch;
  bool trans_a = false;
  bool trans_b = false;
  SizeExpr lda, ldb;
  SizeExpr stride_a, stride_b;
  double alpha = 1.0;
  GemmEpilogue epilogue = GemmEpilogue::none;
};

struct CudaLaunch {
  uint32_t kernel;                 // index into CudaLoweredGraph::kernels, or kNoKernel
  std::optional<GemmLaunch> gemm;  // set: a cuBLASLt call, not a kernel
  std::vector<uint32_t> buffers;   // indices into CudaLoweredGraph::buffers, in argument order
  std::array<SizeExpr, 3> grid = {SizeExpr::constant(1), SizeExpr::constant(1),
                                  SizeExpr::constant(1)};
  std::array<uint32_t, 3> block = {1, 1, 1};
  uint32_t shared_bytes = 0;  // dynamic shared memory (the kernels use static shared memory)
};

// Names the CUDA codegen in every key; bumped when the generated text
// changes for the same graph (v2: gelu rounded to 16 bits through
// gelu_narrow.h; v3: reductions of a whole rank-1 tensor are standalone,
// split over blocks; v4: matmul groups are cuBLASLt calls), so cache keys change with it. The
// generator and the JIT both use it.
inline constexpr const char* kCudaCodegenVersion = "cuda-codegen-v4";
// Alignment a specialization lowered with aligned16 guards on.
inline constexpr int64_t kCudaVectorAlignment = 16;

struct CudaLoweredGraph {
  std::vector<PlanBuffer> buffers;
  std::vector<CudaKernel> kernels;
  std::vector<CudaLaunch> launches;
  // Some kernel moves 16-byte vectors, so the code depends on the
  // aligned16 option; otherwise it is the same either way.
  bool vectorized = false;
};

// Index extents (buffer sizes and kernel domains, in elements) below this
// are indexed with int. Not 2^31: a grid-stride index below the extent plus
// a stride of up to the extent and one grid step must not wrap.
inline constexpr int64_t kCudaInt32IndexLimit = (int64_t{1} << 30) - (int64_t{1} << 20);

struct CudaCodegenOptions {
  std::string entry_prefix;  // kernels are <prefix>_k<i>
  // Every buffer's address is a multiple of 16 bytes (the specialization's
  // guards check it), so rows whose width allows it move in 16-byte vectors.
  bool aligned16 = true;
  // Every index extent is below kCudaInt32IndexLimit (an IndexWidth guard
  // checks it), so kernels index with int even where sizes are symbolic.
  bool index32 = false;
  // For NVRTC (the JIT) instead of nvcc: NVRTC has no C library headers, so
  // the kernels start with a prelude that defines what they use of
  // <stdint.h> and <math.h> instead of including them. The kernel bodies are
  // the same either way; false keeps nvcc's text byte for byte.
  bool nvrtc = false;
};

CudaLoweredGraph lower_cuda(const ir::Graph& g, const ir::SymbolValues& static_values,
                            const CudaCodegenOptions& options);

// nvcc flags for a cubin of `arch` ("sm_90"); throws std::invalid_argument
// for anything but sm_<NN>.
std::vector<std::string> cuda_compile_flags(const std::string& arch);

}  // namespace kiln::compiler
