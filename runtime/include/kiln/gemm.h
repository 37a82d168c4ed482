// A Gemm launch (kiln.fb.GemmCall) with its sizes evaluated for one call,
// and the device buffers it runs on: what CudaKernelLauncher::run_gemm
// takes, from the runtime's own plans and from the JIT's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kiln/dtype.h"

namespace kiln {

// The values of kiln.fb.GemmEpilogue.
enum class GemmEpilogue : uint8_t { none = 0, bias = 1, relu = 2, bias_relu = 3 };

constexpr bool gemm_has_bias(GemmEpilogue e) {
  return e == GemmEpilogue::bias || e == GemmEpilogue::bias_relu;
}
constexpr bool gemm_has_relu(GemmEpilogue e) {
  return e == GemmEpilogue::relu || e == GemmEpilogue::bias_relu;
}
// The name the schema gives `e` ("bias_relu"), "unknown" for a value it does
// not have; null-terminated, so it may go to printf's %s.
constexpr std::string_view gemm_epilogue_name(GemmEpilogue e) {
  switch (e) {
    case GemmEpilogue::none:
      return "none";
    case GemmEpilogue::bias:
      return "bias";
    case GemmEpilogue::relu:
      return "relu";
    case GemmEpilogue::bias_relu:
      return "bias_relu";
  }
  return "unknown";
}

// Row-major, batched, f32 accumulation:
//   D[i] (m x n) = epilogue(alpha * op(A[i]) (m x k) * op(B[i]) (k x n)), i < batch
// A is stored m x k with row stride lda, or k x m when trans_a (B likewise:
// k x n, or n x k when trans_b); stride_a and stride_b are the elements from
// one matrix to the next, 0 reusing one matrix for every i. D is dense (row
// stride n, batch stride m * n); the bias, when the epilogue has one, is n
// elements of d_dtype added to every row.
struct GemmProblem {
  DType a_dtype = DType::f32;
  DType b_dtype = DType::f32;
  DType d_dtype = DType::f32;
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  int64_t batch = 1;
  bool trans_a = false;
  bool trans_b = false;
  int64_t lda = 0;
  int64_t ldb = 0;
  int64_t stride_a = 0;
  int64_t stride_b = 0;
  double alpha = 1.0;
  GemmEpilogue epilogue = GemmEpilogue::none;
};

// A device buffer and the number of elements (of the dtype the gemm reads it
// as) that lie at `data`: the gemm is held to them, so a plan that asks for
// more fails before cuBLASLt reads or writes out of bounds.
struct GemmOperand {
  void* data = nullptr;
  int64_t elements = 0;
};

struct GemmOperands {
  GemmOperand a;
  GemmOperand b;
  GemmOperand d;
  GemmOperand bias;  // read only when the epilogue has a bias
  // cuBLASLt's scratch, from the call's workspace allocation (so calls on
  // different streams never share it), 256-byte aligned;
  // CudaKernelLauncher::gemm_workspace_bytes() is what it should hold.
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

}  // namespace kiln
