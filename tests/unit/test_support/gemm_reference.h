// Test helper: the GemmCall semantics (kiln/gemm.h) on the host, the oracle
// that cuBLASLt's results, and an emulator running library-call launches,
// are checked against. Products accumulate in double; each D element is
// rounded once, to d_dtype, as the interpreter rounds (kiln::compiler's
// HostTensor and round_to_dtype, which also read and write the 16-bit
// encodings).
//
//   D[i] (m x n) = epilogue(alpha * op(A[i]) (m x k) * op(B[i]) (k x n) [+ bias])
//
// A[i] starts stride_a elements after A[i - 1] (0: the same matrix); op(A)
// is A stored m x k with row stride lda, or A^T of A stored k x m (trans_a).
// Likewise B (k x n, or n x k when trans_b). D is dense.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/compiler/interpreter.h"
#include "kiln/gemm.h"

namespace kiln_test {

// The problem most tests run: f16 x f16 -> f32, D = relu(0.5 * A^T B +
// bias), A stored 17 x 3 and shared by both batches, B 17 x 5 per batch.
inline kiln::GemmProblem example_gemm() {
  kiln::GemmProblem p;
  p.a_dtype = p.b_dtype = kiln::DType::f16;
  p.d_dtype = kiln::DType::f32;
  p.m = 3;
  p.n = 5;
  p.k = 17;
  p.batch = 2;
  p.trans_a = true;
  p.lda = 3;
  p.ldb = 5;
  p.stride_a = 0;
  p.stride_b = 85;
  p.alpha = 0.5;
  p.epilogue = kiln::GemmEpilogue::bias_relu;
  return p;
}

// Elements an operand spans from its first: (batch - 1) * stride +
// (rows - 1) * ld + row, or 0 when it is empty.
inline int64_t gemm_matrix_elements(int64_t batch, int64_t stride, int64_t rows, int64_t row,
                                    int64_t ld) {
  if (batch == 0 || rows == 0 || row == 0) return 0;
  return (batch - 1) * stride + (rows - 1) * ld + row;
}
inline int64_t gemm_a_elements(const kiln::GemmProblem& p) {
  return gemm_matrix_elements(p.batch, p.stride_a, p.trans_a ? p.k : p.m, p.trans_a ? p.m : p.k,
                              p.lda);
}
inline int64_t gemm_b_elements(const kiln::GemmProblem& p) {
  return gemm_matrix_elements(p.batch, p.stride_b, p.trans_b ? p.n : p.k, p.trans_b ? p.k : p.n,
                              p.ldb);
}
inline int64_t gemm_d_elements(const kiln::GemmProblem& p) { return p.batch * p.m * p.n; }

// op(A[i])[r][c] for r < m, c < k, and op(B[i])[r][c] for r < k, c < n.
inline int64_t gemm_a_index(const kiln::GemmProblem& p, int64_t i, int64_t r, int64_t c) {
  return i * p.stride_a + (p.trans_a ? c * p.lda + r : r * p.lda + c);
}
inline int64_t gemm_b_index(const kiln::GemmProblem& p, int64_t i, int64_t r, int64_t c) {
  return i * p.stride_b + (p.trans_b ? c * p.ldb + r : r * p.ldb + c);
}

// D's batch * m * n values. `a` and `b` hold values already of their
// dtypes; `bias` n values of d_dtype (ignored without a bias epilogue).
// Throws std::out_of_range when an operand is shorter than the problem reads.
inline std::vector<double> gemm_reference(const kiln::GemmProblem& p, std::span<const double> a,
                                          std::span<const double> b, std::span<const double> bias) {
  const bool has_bias = kiln::gemm_has_bias(p.epilogue);
  auto too_short = [](const char* what, size_t has, int64_t needs) {
    if (static_cast<int64_t>(has) < needs) {
      throw std::out_of_range(std::string("gemm_reference: ") + what + " has " +
                              std::to_string(has) + " elements, the problem reads " +
                              std::to_string(needs));
    }
  };
  too_short("A", a.size(), gemm_a_elements(p));
  too_short("B", b.size(), gemm_b_elements(p));
  if (has_bias) too_short("the bias", bias.size(), p.n);
  std::vector<double> d(static_cast<size_t>(gemm_d_elements(p)));
  for (int64_t i = 0; i < p.batch; ++i) {
    for (int64_t r = 0; r < p.m; ++r) {
      for (int64_t c = 0; c < p.n; ++c) {
        double sum = 0;
        for (int64_t x = 0; x < p.k; ++x) {
          sum += a[static_cast<size_t>(gemm_a_index(p, i, r, x))] *
                 b[static_cast<size_t>(gemm_b_index(p, i, x, c))];
        }
        double v = p.alpha * sum;
        if (has_bias) v += bias[static_cast<size_t>(c)];
        if (kiln::gemm_has_relu(p.epilogue)) v = std::max(v, 0.0);
        d[static_cast<size_t>((i * p.m + r) * p.n + c)] =
            kiln::compiler::round_to_dtype(v, p.d_dtype);
      }
    }
  }
  return d;
}

// The same on the bytes of the dtypes (bf16 and f16 as 16-bit patterns): an
// emulator's library-call launch, given its buffers and their element
// counts. Writes D's batch * m * n elements.
inline void gemm_reference_bytes(const kiln::GemmProblem& p, const void* a, int64_t a_elements,
                                 const void* b, int64_t b_elements, const void* bias, void* d) {
  using kiln::compiler::HostTensor;
  const HostTensor ha = HostTensor::from_bytes(p.a_dtype, {a_elements}, a);
  const HostTensor hb = HostTensor::from_bytes(p.b_dtype, {b_elements}, b);
  HostTensor hbias;
  if (kiln::gemm_has_bias(p.epilogue)) hbias = HostTensor::from_bytes(p.d_dtype, {p.n}, bias);
  HostTensor hd;
  hd.dtype = p.d_dtype;
  hd.shape = {gemm_d_elements(p)};
  hd.values = gemm_reference(p, ha.values, hb.values, hbias.values);
  const std::vector<uint8_t> bytes = hd.to_bytes();
  std::copy(bytes.begin(), bytes.end(), static_cast<uint8_t*>(d));
}

}  // namespace kiln_test
