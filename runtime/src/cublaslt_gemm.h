// One device's cuBLASLt: its handle, its algorithm cache, and the row-major
// gemm run as cuBLASLt's column-major one. A row-major m x n D is a
// column-major n x m D^T = op(B)^T op(A)^T, so cuBLASLt's first operand is
// B's memory and its second A's, with m and n swapped and no copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cublaslt_library.h"
#include "gemm_algo_cache.h"
#include "gemm_bounds.h"
#include "kiln/gemm.h"

namespace kiln::detail {

// cuBLAS's advice for the workspace: 32 MiB on Hopper (sm_90) and newer,
// 4 MiB before.
size_t cublaslt_workspace_bytes(int compute_capability) noexcept;

// A gemm's descriptors in storage of its own (cuBLASLt's *Init calls, which
// allocate nothing and need no destroy), sized above what CUDA 13 asks
// (256 and 64 bytes): cuBLASLt refuses storage too small, never overruns it.
struct GemmDescriptors {
  uint64_t matmul[64];
  uint64_t first[16];   // cuBLASLt's A: B's memory
  uint64_t second[16];  // cuBLASLt's B: A's memory
  uint64_t d[16];       // C (beta is 0) and D
};

// Fills `out` for `p` with the bias at `bias` (when the epilogue has one):
// f32 compute and scale, transposes and layouts swapped as above, batch
// count and strides (D's m * n), the epilogue and the bias's dtype (D's).
// Throws Error(internal) naming the site when cuBLASLt refuses one.
void build_gemm_descriptors(const CublasLtLibrary& lt, const GemmProblem& p, const void* bias,
                            GemmDescriptors& out, const GemmSite& site);

class CublasLtGemm {
 public:
  // cublasLtCreate; the device's primary context must be current. Throws
  // Error(cuda_error) when cuBLASLt refuses.
  CublasLtGemm(const CublasLtLibrary& lt, int ordinal, const GemmSite& site);
  // cublasLtDestroy; the context must be current. Never throws.
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  // One cublasLtMatmul on `stream`, with the algorithm the cache holds for
  // this problem (the heuristic's first choice, asked once per key). The
  // problem must have passed check_gemm_operands() and have k > 0 and a
  // non-empty D. Throws Error(cuda_error) naming the site, the problem and
  // cuBLASLt's status when there is no algorithm or the gemm is refused.
  void run(const GemmProblem& p, const GemmOperands& operands, void* stream, const GemmSite& site);

  const GemmAlgoCache& algorithms() const noexcept { return algorithms_; }

 private:
  GemmAlgo choose(const GemmDescriptors& descriptors, const GemmAlgoKey& key, const GemmProblem& p,
                  const GemmSite& site) const;

  const CublasLtLibrary& lt_;
  int ordinal_;
  cublasLtHandle_t handle_ = nullptr;
  GemmAlgoCache algorithms_;
};

}  // namespace kiln::detail
