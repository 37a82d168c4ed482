// test_support/gemm_reference.h against a naive triple loop that builds
// every op(A[i]) and op(B[i]) as an explicit matrix first (transposing
// stored copies), over transposes, padded leading dimensions, batches with
// and without a shared (stride 0) operand, alpha and every epilogue, in f32
// and through the 16-bit encodings.
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/interpreter.h"
#include "test_support/gemm_reference.h"

namespace {

using kiln::DType;
using kiln::GemmEpilogue;
using kiln::GemmProblem;
using Matrix = std::vector<std::vector<double>>;

// The stored rows x row matrix that starts at `first`, with row stride ld.
Matrix stored(const std::vector<double>& memory, int64_t first, int64_t rows, int64_t row,
              int64_t ld) {
  Matrix s(static_cast<size_t>(rows), std::vector<double>(static_cast<size_t>(row)));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < row; ++c) {
      s[static_cast<size_t>(r)][static_cast<size_t>(c)] =
          memory.at(static_cast<size_t>(first + r * ld + c));
    }
  }
  return s;
}

Matrix transposed(const Matrix& s, int64_t rows, int64_t cols) {
  Matrix t(static_cast<size_t>(cols), std::vector<double>(static_cast<size_t>(rows)));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      t[static_cast<size_t>(c)][static_cast<size_t>(r)] =
          s[static_cast<size_t>(r)][static_cast<size_t>(c)];
    }
  }
  return t;
}

std::vector<double> naive(const GemmProblem& p, const std::vector<double>& a,
                          const std::vector<double>& b, const std::vector<double>& bias) {
  std::vector<double> d;
  for (int64_t i = 0; i < p.batch; ++i) {
    const Matrix op_a = p.trans_a ? transposed(stored(a, i * p.stride_a, p.k, p.m, p.lda), p.k, p.m)
                                  : stored(a, i * p.stride_a, p.m, p.k, p.lda);
    const Matrix op_b = p.trans_b ? transposed(stored(b, i * p.stride_b, p.n, p.k, p.ldb), p.n, p.k)
                                  : stored(b, i * p.stride_b, p.k, p.n, p.ldb);
    for (int64_t r = 0; r < p.m; ++r) {
      for (int64_t c = 0; c < p.n; ++c) {
        double sum = 0;
        for (int64_t x = 0; x < p.k; ++x) {
          sum += op_a[static_cast<size_t>(r)][static_cast<size_t>(x)] *
                 op_b[static_cast<size_t>(x)][static_cast<size_t>(c)];
        }
        double v = p.alpha * sum;
        if (p.epilogue == GemmEpilogue::bias || p.epilogue == GemmEpilogue::bias_relu) {
          v += bias.at(static_cast<size_t>(c));
        }
        if ((p.epilogue == GemmEpilogue::relu || p.epilogue == GemmEpilogue::bias_relu) && v < 0) {
          v = 0;
        }
        d.push_back(kiln::compiler::round_to_dtype(v, p.d_dtype));
      }
    }
  }
  return d;
}

std::vector<double> random_values(DType dtype, int64_t count, std::mt19937_64& rng) {
  return kiln::compiler::random_tensor(dtype, {count}, rng).values;
}

// m, n, k, batch, trans_a, trans_b, lda and ldb padding, stride_a and
// stride_b (-1: dense, 0: shared), alpha, epilogue.
struct Shape {
  int64_t m, n, k, batch;
  bool trans_a, trans_b;
  int64_t pad_a, pad_b;
  int64_t stride_a, stride_b;
  double alpha;
  GemmEpilogue epilogue;
};

GemmProblem problem(const Shape& s, DType in, DType out) {
  GemmProblem p;
  p.a_dtype = p.b_dtype = in;
  p.d_dtype = out;
  p.m = s.m;
  p.n = s.n;
  p.k = s.k;
  p.batch = s.batch;
  p.trans_a = s.trans_a;
  p.trans_b = s.trans_b;
  p.lda = (s.trans_a ? s.m : s.k) + s.pad_a;
  p.ldb = (s.trans_b ? s.k : s.n) + s.pad_b;
  const int64_t one_a =
      kiln_test::gemm_matrix_elements(1, 0, s.trans_a ? s.k : s.m, s.trans_a ? s.m : s.k, p.lda);
  const int64_t one_b =
      kiln_test::gemm_matrix_elements(1, 0, s.trans_b ? s.n : s.k, s.trans_b ? s.k : s.n, p.ldb);
  p.stride_a = s.stride_a < 0 ? one_a + 3 : s.stride_a;
  p.stride_b = s.stride_b < 0 ? one_b : s.stride_b;
  p.alpha = s.alpha;
  p.epilogue = s.epilogue;
  return p;
}

const Shape kShapes[] = {
    {1, 3, 17, 1, false, false, 0, 0, 0, 0, 1.0, GemmEpilogue::none},
    {5, 7, 4, 1, true, false, 2, 0, 0, 0, -0.5, GemmEpilogue::bias},
    {4, 6, 9, 1, false, true, 0, 5, 0, 0, 2.0, GemmEpilogue::relu},
    {3, 2, 8, 1, true, true, 1, 1, 0, 0, 1.0, GemmEpilogue::bias_relu},
    {6, 5, 3, 3, false, false, 0, 2, -1, -1, 0.75, GemmEpilogue::bias},
    {2, 9, 5, 4, true, false, 0, 0, 0, -1, 1.0, GemmEpilogue::relu},
    {7, 1, 6, 2, false, true, 3, 0, -1, 0, -1.25, GemmEpilogue::bias_relu},
    {4, 4, 0, 2, false, false, 0, 0, 0, 0, 1.0, GemmEpilogue::bias_relu},
};

TEST(GemmReference, MatchesANaiveTripleLoopInF32) {
  std::mt19937_64 rng(6);
  for (const Shape& s : kShapes) {
    const GemmProblem p = problem(s, DType::f32, DType::f32);
    const auto a = random_values(DType::f32, kiln_test::gemm_a_elements(p), rng);
    const auto b = random_values(DType::f32, kiln_test::gemm_b_elements(p), rng);
    const auto bias = random_values(DType::f32, p.n, rng);
    const std::vector<double> got = kiln_test::gemm_reference(p, a, b, bias);
    ASSERT_EQ(got.size(), static_cast<size_t>(p.batch * p.m * p.n));
    EXPECT_EQ(got, naive(p, a, b, bias)) << "m " << s.m << " n " << s.n << " k " << s.k;
  }
}

TEST(GemmReference, RelusAndBiasesActuallyShowUp) {
  // A problem where relu clips and the bias moves every element: a check
  // of the test itself, so the comparisons above are not vacuous.
  GemmProblem p = problem({2, 3, 2, 1, false, false, 0, 0, 0, 0, 1.0, GemmEpilogue::relu},
                          DType::f32, DType::f32);
  const std::vector<double> a = {1, -1, -2, 3};  // [[1, -1], [-2, 3]]
  const std::vector<double> b = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(kiln_test::gemm_reference(p, a, b, {}),
            (std::vector<double>{0, 0, 0, 10, 11, 12}));  // [-3 -3 -3], [10 11 12]
  p.epilogue = GemmEpilogue::bias_relu;
  p.alpha = 2;
  EXPECT_EQ(kiln_test::gemm_reference(p, a, b, std::vector<double>{7, 0, 6.5}),
            (std::vector<double>{1, 0, 0.5, 27, 22, 30.5}));
  // k = 0: epilogue(bias).
  p.k = 0;
  EXPECT_EQ(kiln_test::gemm_reference(p, {}, {}, std::vector<double>{-1, 2, 0}),
            (std::vector<double>{0, 2, 0, 0, 2, 0}));
}

TEST(GemmReference, SixteenBitBuffersRoundTripThroughTheirEncodings) {
  std::mt19937_64 rng(16);
  for (const DType in : {DType::f16, DType::bf16}) {
    for (const DType out : {in, DType::f32}) {
      for (const Shape& s : kShapes) {
        const GemmProblem p = problem(s, in, out);
        const auto a = kiln::compiler::random_tensor(in, {kiln_test::gemm_a_elements(p)}, rng);
        const auto b = kiln::compiler::random_tensor(in, {kiln_test::gemm_b_elements(p)}, rng);
        const auto bias = kiln::compiler::random_tensor(out, {p.n}, rng);
        const std::vector<uint8_t> a_bytes = a.to_bytes();
        const std::vector<uint8_t> b_bytes = b.to_bytes();
        const std::vector<uint8_t> bias_bytes = bias.to_bytes();
        std::vector<uint8_t> d_bytes(static_cast<size_t>(p.batch * p.m * p.n) *
                                     static_cast<size_t>(kiln::dtype_size(out)));
        kiln_test::gemm_reference_bytes(p, a_bytes.data(), a.numel(), b_bytes.data(), b.numel(),
                                        bias_bytes.data(), d_bytes.data());
        const kiln::compiler::HostTensor d =
            kiln::compiler::HostTensor::from_bytes(out, {p.batch * p.m * p.n}, d_bytes.data());
        EXPECT_EQ(d.values, naive(p, a.values, b.values, bias.values))
            << kiln::dtype_name(in) << " -> " << kiln::dtype_name(out) << ", m " << s.m;
      }
    }
  }
}

TEST(GemmReference, RefusesOperandsShorterThanTheProblemReads) {
  const GemmProblem p = problem({3, 4, 5, 2, false, true, 1, 0, -1, -1, 1.0, GemmEpilogue::bias},
                                DType::f32, DType::f32);
  const std::vector<double> a(static_cast<size_t>(kiln_test::gemm_a_elements(p)), 1.0);
  const std::vector<double> b(static_cast<size_t>(kiln_test::gemm_b_elements(p)), 1.0);
  const std::vector<double> bias(4, 1.0);
  EXPECT_NO_THROW(kiln_test::gemm_reference(p, a, b, bias));
  EXPECT_THROW(kiln_test::gemm_reference(p, std::span(a).first(a.size() - 1), b, bias),
               std::out_of_range);
  EXPECT_THROW(kiln_test::gemm_reference(p, a, std::span(b).first(b.size() - 1), bias),
               std::out_of_range);
  EXPECT_THROW(kiln_test::gemm_reference(p, a, b, std::span(bias).first(3)), std::out_of_range);
}

}  // namespace
