// What a gemm reads and writes, and the check that its buffers hold that
// much. cuBLASLt trusts the sizes it is given, so a plan whose sizes ask for
// more than its buffers hold (a corrupt package, a wrong symbol) must fail
// here, before any device memory is touched.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kiln/gemm.h"

namespace kiln::detail {

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
