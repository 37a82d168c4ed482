// A gemm on the host, from its launch plan to the problem cuBLASLt runs:
// the plan's GemmCall as programs over the graph's symbols, the elements
// each operand's buffer holds, and the check that they hold what the gemm
// reads and writes. cuBLASLt trusts the sizes it is given, so a plan whose
// sizes ask for more than its buffers hold (a corrupt package, a wrong
// symbol) must fail here, before any device memory is touched.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <dlpack/dlpack.h>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/dtype.h"
#include "kiln/gemm.h"
#include "size_expr.h"

namespace kiln::detail {

// A GemmCall of a launch plan, copied out of the manifest once: its sizes as
// SizePrograms over the graph's symbols, evaluated per call into the
// GemmProblem that CudaKernelLauncher::run_gemm runs.

class GemmProgram {
 public:
  // `call` must have passed validate_library_call(): every size present and
  // reading only the graph's symbols.
  explicit GemmProgram(const fb::GemmCall& call);

  // Throws Error(invalid_argument) when a size overflows or divides by zero.
  GemmProblem evaluate(const int64_t* symbols) const;

 private:
  GemmProblem fixed_;  // dtypes, transposes, alpha and epilogue; sizes come per call
  SizeProgram m_;
  SizeProgram n_;
  SizeProgram k_;
  SizeProgram batch_;
  SizeProgram lda_;
  SizeProgram ldb_;
  SizeProgram stride_a_;
  SizeProgram stride_b_;
};

// How many elements a gemm may touch at a plan buffer: what the plan
// declares, and never more than the caller's tensor behind it spans, so
// that neither a wrong plan nor a view the guards let through can make
// cuBLASLt read or write past the caller's memory.

// The bytes from data + byte_offset to the end of the tensor's last element
// (row-major when strides is NULL; only positive strides reach forward); 0
// without elements, -1 when that overflows int64.
int64_t tensor_span_bytes(const DLTensor& tensor) noexcept;

// Elements of `dtype` at the buffer: the smaller of `declared` (its plan
// numel; -1 when the plan gives none) and what `tensor` spans (nullptr: a
// temp, which holds what it declares). 0 when neither is known or the span
// overflows.
int64_t gemm_operand_elements(const DLTensor* tensor, int64_t declared, DType dtype) noexcept;

// What a gemm reads and writes, and the check that its buffers hold that
// much.

// Where a gemm runs, for messages; the text is built only when one is
// thrown, so a call formats nothing.
struct GemmSite {
  std::string_view graph;
  std::string_view launch;  // "launch 1 (gemm)"
  // "kiln: graph 'mlp', launch 1 (gemm): "
  std::string prefix() const;
};

// Elements of each operand's dtype that the gemm touches, counted from the
// operand's pointer: (batch - 1) * stride + (rows - 1) * ld + row for A
// and B, batch * m * n for D, n for the bias. All zero when D is empty
// (nothing runs).
struct GemmExtents {
  int64_t a = 0;
  int64_t b = 0;
  int64_t d = 0;
  int64_t bias = 0;
};

// Throws Error(invalid_argument), its message starting with site.prefix(), for
// dtypes cuBLASLt's f32-accumulating gemm does not take (A and B must be
// one of f32, f16, bf16; D that or f32), an unknown epilogue, a negative
// size or stride, a leading dimension shorter than its row (or below 1), a
// batch above 2^31 - 1, or an extent that overflows int64.
GemmExtents gemm_extents(const GemmProblem& p, const GemmSite& site);

// gemm_extents(), then each operand against its buffer: fewer elements
// than its extent, or NULL data for a non-empty extent, throws
// Error(invalid_argument) naming the operand, what it needs and what it has.
void check_gemm_operands(const GemmProblem& p, const GemmOperands& operands, const GemmSite& site);

// "f16 x f16 -> f32, m 3, n 5, k 17, batch 2, trans_a, lda 3, ldb 5,
// stride_a 0, stride_b 85, alpha 1, epilogue bias_relu": for messages.
std::string gemm_text(const GemmProblem& p);

}  // namespace kiln::detail
