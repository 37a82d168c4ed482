// The reference interpreter's semantics, checked on hand-computed values.
#include <cmath>

#include <gtest/gtest.h>

#include "kiln/compiler/interpreter.h"
#include "kiln/graph.h"

namespace {

using kiln::compiler::HostTensor;
using kiln::compiler::interpret;

HostTensor tensor(kiln::DType t, std::vector<int64_t> shape, std::vector<double> v) {
  return HostTensor{t, std::move(shape), std::move(v)};
}

TEST(Interpreter, BroadcastAddAndReductions) {
  const auto g = kiln::trace("g", [] {
    auto n = kiln::sym("n");
    auto x = kiln::input("x", kiln::f64, {n, 3});
    auto b = kiln::input("b", kiln::f64, {3});
    auto y = x + b;
    return kiln::outputs(y, kiln::sum(y, -1), kiln::max(y, -1, true), kiln::mean(y, -1));
  });
  const auto out = interpret(g, {tensor(kiln::DType::f64, {2, 3}, {1, 2, 3, 4, 5, 6}),
                                 tensor(kiln::DType::f64, {3}, {10, 20, 30})});
  EXPECT_EQ(out[0].values, (std::vector<double>{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(out[1].values, (std::vector<double>{66, 75}));
  EXPECT_EQ(out[2].shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(out[2].values, (std::vector<double>{33, 36}));
  EXPECT_EQ(out[3].values, (std::vector<double>{22, 25}));
}

TEST(Interpreter, MatmulBroadcastsBatchesAndRoundsOnce) {
  const auto g = kiln::trace("g", [] {
    auto a = kiln::input("a", kiln::f32, {2, 2, 3});
    auto b = kiln::input("b", kiln::f32, {3, 2});
    auto c = kiln::input("c", kiln::bf16, {1, 3});
    auto d = kiln::input("d", kiln::bf16, {3, 1});
    return kiln::outputs(kiln::matmul(a, b),
                         kiln::matmul(b, kiln::input("e", kiln::f32, {2, 2, 1})),
                         kiln::matmul(c, d));
  });
  // a[0] = [[1 2 3] [4 5 6]], a[1] = [[-1 0 1] [2 2 2]]; b = [[1 0] [0 1] [1 1]].
  // e[0] = [[1] [2]], e[1] = [[-1] [3]]. c = [1 1 1], d = [1 q q]^T with
  // q = 3 * 2^-10: the exact 1 + 2q rounds once to bf16's 1 + 2^-7; rounding
  // each partial sum would lose q twice and give 1.
  const double q = 3.0 / 1024;
  const auto out =
      interpret(g, {tensor(kiln::DType::f32, {2, 2, 3}, {1, 2, 3, 4, 5, 6, -1, 0, 1, 2, 2, 2}),
                    tensor(kiln::DType::f32, {3, 2}, {1, 0, 0, 1, 1, 1}),
                    tensor(kiln::DType::bf16, {1, 3}, {1, 1, 1}),
                    tensor(kiln::DType::bf16, {3, 1}, {1, q, q}),
                    tensor(kiln::DType::f32, {2, 2, 1}, {1, 2, -1, 3})});
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(out[0].values, (std::vector<double>{4, 5, 10, 11, 0, 1, 4, 4}));
  EXPECT_EQ(out[1].shape, (std::vector<int64_t>{2, 3, 1}));
  EXPECT_EQ(out[1].values, (std::vector<double>{1, 2, 3, -1, 3, 2}));
  EXPECT_EQ(out[2].values, (std::vector<double>{1 + 1.0 / 128}));
}

TEST(Interpreter, ReductionsOverAnyAxes) {
  // x[2][3][2] = 1 .. 12 (row-major).
  const auto g = kiln::trace("g", [] {
    auto x = kiln::input("x", kiln::f64, {2, 3, 2});
    return kiln::outputs(kiln::sum(x, 0), kiln::sum(x, 1, true), kiln::mean(x, {0, 2}),
                         kiln::max(x, {0, 1}), kiln::min(x, {1, 2}, true), kiln::prod(x, 0),
                         kiln::sum(x, kiln::all_axes(x)), kiln::prod(x, {-1}));
  });
  std::vector<double> v(12);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i + 1);
  const auto out = interpret(g, {tensor(kiln::DType::f64, {2, 3, 2}, v)});
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(out[0].values, (std::vector<double>{8, 10, 12, 14, 16, 18}));
  EXPECT_EQ(out[1].shape, (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(out[1].values, (std::vector<double>{9, 12, 27, 30}));
  // (1+2+7+8)/4, (3+4+9+10)/4, (5+6+11+12)/4
  EXPECT_EQ(out[2].values, (std::vector<double>{4.5, 6.5, 8.5}));
  EXPECT_EQ(out[3].values, (std::vector<double>{11, 12}));
  EXPECT_EQ(out[4].shape, (std::vector<int64_t>{2, 1, 1}));
  EXPECT_EQ(out[4].values, (std::vector<double>{1, 7}));
  EXPECT_EQ(out[5].values, (std::vector<double>{7, 16, 27, 40, 55, 72}));
  EXPECT_TRUE(out[6].shape.empty());
  EXPECT_EQ(out[6].values, (std::vector<double>{78}));
  EXPECT_EQ(out[7].values, (std::vector<double>{2, 12, 30, 56, 90, 132}));
}

TEST(Interpreter, ArgmaxTakesTheFirstMaximumAndTheFirstNaN) {
  const auto g = kiln::trace("g", [] {
    auto x = kiln::input("x", kiln::f32, {3, 4});
    return kiln::outputs(kiln::argmax(x), kiln::argmax(x, 0, true));
  });
  const double nan = std::nan("");
  const auto out = interpret(g, {tensor(kiln::DType::f32, {3, 4},
                                        {1, 5, 5, 2,      //
                                         nan, 3, nan, 9,  //
                                         -1, -1, -2, -3})});
  EXPECT_EQ(out[0].dtype, kiln::DType::i64);
  EXPECT_EQ(out[0].values, (std::vector<double>{1, 0, 0}));
  EXPECT_EQ(out[1].shape, (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(out[1].values, (std::vector<double>{1, 0, 1, 1}));
  const auto gi = kiln::trace(
      "gi", [] { return kiln::outputs(kiln::argmax(kiln::input("x", kiln::i32, {5}))); });
  EXPECT_EQ(interpret(gi, {tensor(kiln::DType::i32, {5}, {3, 7, 1, 7, 7})})[0].values,
            (std::vector<double>{1}));
}

TEST(Interpreter, LogSoftmaxIsStableAndMatchesTheDefinition) {
  const auto g = kiln::trace("g", [] {
    auto x = kiln::input("x", kiln::f64, {2, 3});
    return kiln::outputs(kiln::log_softmax(x), kiln::log_softmax(x, 0));
  });
  const auto out = interpret(g, {tensor(kiln::DType::f64, {2, 3}, {1000, 1001, 1002, 0, 1, 2})});
  // Rows: log_softmax([0, 1, 2]) whatever the offset; exp(1000) would overflow.
  const double lse = std::log(1 + std::exp(1.0) + std::exp(2.0));
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(out[0].values[r * 3 + c], c - lse, 1e-12);
  }
  // Columns: [1000, 0] -> [0, -1000] up to log(1 + e^-1000) = 0.
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(out[1].values[c], 0.0, 1e-12);
    EXPECT_NEAR(out[1].values[3 + c], -1000.0, 1e-9);
  }
}

TEST(Interpreter, SoftmaxRowsSumToOne) {
  const auto g = kiln::trace("s", [] {
    auto x = kiln::input("x", kiln::f32, {4, 33});
    return kiln::outputs(kiln::softmax(x));
  });
  std::mt19937_64 rng(1);
  const auto out = interpret(g, {kiln::compiler::random_tensor(kiln::DType::f32, {4, 33}, rng)});
  for (size_t r = 0; r < 4; ++r) {
    double s = 0;
    for (size_t c = 0; c < 33; ++c) s += out[0].values[r * 33 + c];
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
}

TEST(Interpreter, GeluAndWhere) {
  const auto g = kiln::trace("w", [] {
    auto x = kiln::input("x", kiln::f64, {3});
    return kiln::outputs(kiln::gelu(x), kiln::where(x > 0.0, x, -x));
  });
  const auto out = interpret(g, {tensor(kiln::DType::f64, {3}, {-1, 0.5, 2})});
  EXPECT_NEAR(out[0].values[0], -0.15865525393145707, 1e-15);
  EXPECT_NEAR(out[0].values[2], 1.9544997361036416, 1e-15);
  EXPECT_EQ(out[1].values, (std::vector<double>{1, 0.5, 2}));
}

TEST(Interpreter, SixteenBitRoundingAndBytes) {
  EXPECT_EQ(kiln::compiler::round_to_dtype(1.0 + 1.0 / 512, kiln::DType::bf16),
            1.0);  // ties to even
  EXPECT_EQ(kiln::compiler::round_to_dtype(1.0 + 3.0 / 512, kiln::DType::bf16), 1.0 + 4.0 / 512);
  EXPECT_EQ(kiln::compiler::round_to_dtype(65504.0, kiln::DType::f16), 65504.0);
  EXPECT_TRUE(std::isinf(kiln::compiler::round_to_dtype(70000.0, kiln::DType::f16)));
  EXPECT_EQ(kiln::compiler::round_to_dtype(std::ldexp(1.0, -24), kiln::DType::f16),
            std::ldexp(1.0, -24));
  std::mt19937_64 rng(7);
  for (auto t : {kiln::DType::f32, kiln::DType::f16, kiln::DType::bf16, kiln::DType::f64,
                 kiln::DType::i32, kiln::DType::i64, kiln::DType::boolean}) {
    const HostTensor a = kiln::compiler::random_tensor(t, {5, 7}, rng);
    const auto bytes = a.to_bytes();
    EXPECT_EQ(bytes.size(), static_cast<size_t>(35 * kiln::dtype_size(t)));
    const HostTensor b = HostTensor::from_bytes(t, {5, 7}, bytes.data());
    EXPECT_EQ(a.values, b.values) << kiln::dtype_name(t);
  }
}

TEST(Interpreter, RandomInputsAreNeverZero) {
  std::mt19937_64 rng(3);
  const auto t = kiln::compiler::random_tensor(kiln::DType::f32, {1000}, rng);
  for (double v : t.values) EXPECT_GE(std::fabs(v), 0.05);
}

TEST(Interpreter, BindSymbolsChecksShapes) {
  const auto g = kiln::trace("b", [] {
    auto n = kiln::sym("n", {.min = 2, .max = 10});
    return kiln::outputs(kiln::input("x", kiln::f32, {n}) + kiln::input("y", kiln::f32, {n}));
  });
  EXPECT_THROW(interpret(g, {tensor(kiln::DType::f32, {3}, {1, 2, 3}),
                             tensor(kiln::DType::f32, {4}, {1, 2, 3, 4})}),
               std::invalid_argument);
  EXPECT_THROW(
      interpret(g, {tensor(kiln::DType::f32, {1}, {1}), tensor(kiln::DType::f32, {1}, {1})}),
      std::invalid_argument);
}

TEST(Interpreter, AllCloseUsesTolerance) {
  const auto want = tensor(kiln::DType::f32, {2}, {1.0, 100.0});
  auto got = want;
  got.values[1] += 0.005;
  double worst = 0;
  EXPECT_TRUE(kiln::compiler::all_close(got, want, kiln::compiler::tolerance_for(kiln::DType::f32),
                                        &worst));
  got.values[1] += 0.1;
  EXPECT_FALSE(kiln::compiler::all_close(got, want, kiln::compiler::tolerance_for(kiln::DType::f32),
                                         &worst));
  EXPECT_GT(worst, 1.0);
}

std::vector<double> iota_values(size_t n, double from = 1) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = from + static_cast<double>(i);
  return v;
}

TEST(Interpreter, ReshapeSqueezeUnsqueezeKeepRowMajorOrder) {
  const auto g = kiln::trace("g", [] {
    auto n = kiln::sym("n");
    auto x = kiln::input("x", kiln::f64, {n, 6});
    auto y = kiln::input("y", kiln::f64, {2, 6});
    return kiln::outputs(kiln::reshape(x, {n, 2, -1}), kiln::reshape(y, {-1}),
                         kiln::reshape(x, {3, n, 2}), kiln::unsqueeze(x, 1),
                         kiln::squeeze(kiln::unsqueeze(x, -1), 2));
  });
  const auto out = interpret(g, {tensor(kiln::DType::f64, {2, 6}, iota_values(12)),
                                 tensor(kiln::DType::f64, {2, 6}, iota_values(12))});
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(out[1].shape, (std::vector<int64_t>{12}));
  EXPECT_EQ(out[2].shape, (std::vector<int64_t>{3, 2, 2}));
  EXPECT_EQ(out[3].shape, (std::vector<int64_t>{2, 1, 6}));
  EXPECT_EQ(out[4].shape, (std::vector<int64_t>{2, 6}));
  for (const auto& o : out) EXPECT_EQ(o.values, iota_values(12));
}

TEST(Interpreter, ExpandBroadcastsLikeNumPy) {
  const auto g = kiln::trace("g", [] {
    auto c = kiln::input("c", kiln::i32, {2, 1});
    auto r = kiln::input("r", kiln::i32, {3});
    return kiln::outputs(kiln::expand(c, {2, 3}), kiln::broadcast_to(r, {2, 3}),
                         kiln::expand(c, {2, 2, -1}));
  });
  const auto out = interpret(
      g, {tensor(kiln::DType::i32, {2, 1}, {1, 2}), tensor(kiln::DType::i32, {3}, {7, 8, 9})});
  EXPECT_EQ(out[0].values, (std::vector<double>{1, 1, 1, 2, 2, 2}));
  EXPECT_EQ(out[1].values, (std::vector<double>{7, 8, 9, 7, 8, 9}));
  EXPECT_EQ(out[2].shape, (std::vector<int64_t>{2, 2, 1}));
  EXPECT_EQ(out[2].values, (std::vector<double>{1, 2, 1, 2}));
}

TEST(Interpreter, PermuteAndTranspose) {
  const auto g = kiln::trace("g", [] {
    auto x = kiln::input("x", kiln::f32, {2, 3, 2});
    auto m = kiln::input("m", kiln::f32, {2, 3});
    return kiln::outputs(kiln::transpose(m, 0, 1), kiln::permute(x, {2, 0, 1}),
                         kiln::transpose(kiln::transpose(x, 0, 2), -1, 0));
  });
  const auto out = interpret(g, {tensor(kiln::DType::f32, {2, 3, 2}, iota_values(12)),
                                 tensor(kiln::DType::f32, {2, 3}, iota_values(6))});
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(out[0].values, (std::vector<double>{1, 4, 2, 5, 3, 6}));
  // out[i][j][k] = x[j][k][i]
  EXPECT_EQ(out[1].shape, (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(out[1].values, (std::vector<double>{1, 3, 5, 7, 9, 11, 2, 4, 6, 8, 10, 12}));
  // Two swaps of the same axes: the identity.
  EXPECT_EQ(out[2].values, iota_values(12));
}

TEST(Interpreter, SliceCountsFromTheEndAndClampsLikePython) {
  const auto g = kiln::trace("g", [] {
    auto n = kiln::sym("n");
    auto x = kiln::input("x", kiln::i64, {n, 5});
    return kiln::outputs(kiln::slice(x, 1, 1, 5, 2), kiln::slice(x, -1, -2, 100),
                         kiln::slice(x, 1, -100, 2), kiln::slice(x, 1, 4, 5, 3));
  });
  const auto out = interpret(g, {tensor(kiln::DType::i64, {2, 5}, iota_values(10))});
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(out[0].values, (std::vector<double>{2, 4, 7, 9}));
  EXPECT_EQ(out[1].values, (std::vector<double>{4, 5, 9, 10}));
  EXPECT_EQ(out[2].values, (std::vector<double>{1, 2, 6, 7}));
  EXPECT_EQ(out[3].shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(out[3].values, (std::vector<double>{5, 10}));
}

TEST(Interpreter, ConcatAlongAnyAxis) {
  const auto g = kiln::trace("g", [] {
    auto a = kiln::input("a", kiln::f32, {2, 2});
    auto b = kiln::input("b", kiln::f32, {2, 1});
    auto c = kiln::input("c", kiln::f32, {1, 2});
    return kiln::outputs(kiln::concat({a, b, a}, 1), kiln::concat({a, c}, 0),
                         kiln::concat({c, a, c}, -2));
  });
  const auto out = interpret(
      g, {tensor(kiln::DType::f32, {2, 2}, {1, 2, 3, 4}), tensor(kiln::DType::f32, {2, 1}, {5, 6}),
          tensor(kiln::DType::f32, {1, 2}, {7, 8})});
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(out[0].values, (std::vector<double>{1, 2, 5, 1, 2, 3, 4, 6, 3, 4}));
  EXPECT_EQ(out[1].values, (std::vector<double>{1, 2, 3, 4, 7, 8}));
  EXPECT_EQ(out[2].values, (std::vector<double>{7, 8, 1, 2, 3, 4, 7, 8}));
}

TEST(Interpreter, GatherCountsNegativeIndicesFromTheEndAndFillsOutOfRange) {
  const auto g = kiln::trace("g", [] {
    auto t = kiln::input("t", kiln::f32, {4, 2});
    auto ids = kiln::input("ids", kiln::i32, {4});
    auto u = kiln::input("u", kiln::i32, {2, 3});
    auto k = kiln::input("k", kiln::i64, {2, 2});
    auto b = kiln::input("b", kiln::boolean, {3});
    return kiln::outputs(kiln::embedding(t, ids), kiln::gather(u, k, 1),
                         kiln::gather(kiln::cast(u, kiln::i64), k, -1),
                         kiln::gather(b, kiln::cast(ids, kiln::i64)),
                         kiln::gather(t, kiln::constant(-4, kiln::i32), 0));
  });
  const auto out = interpret(g, {tensor(kiln::DType::f32, {4, 2}, {0, 1, 10, 11, 20, 21, 30, 31}),
                                 tensor(kiln::DType::i32, {4}, {2, -1, 4, -5}),
                                 tensor(kiln::DType::i32, {2, 3}, {1, 2, 3, 4, 5, 6}),
                                 tensor(kiln::DType::i64, {2, 2}, {0, 2, -3, 3}),
                                 tensor(kiln::DType::boolean, {3}, {0, 1, 0})});
  // Rows 2 and 3 (-1); 4 and -5 are out of [-4, 4): NaN.
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(std::vector<double>(out[0].values.begin(), out[0].values.begin() + 4),
            (std::vector<double>{20, 21, 30, 31}));
  for (size_t i = 4; i < 8; ++i) EXPECT_TRUE(std::isnan(out[0].values[i])) << i;
  // out[p][q0][q1] = u[p][k[q0][q1]]: k = 0, 2, -3 (= 0), 3 (out of range).
  const double min32 = -2147483648.0;
  EXPECT_EQ(out[1].shape, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(out[1].values, (std::vector<double>{1, 3, 1, min32, 4, 6, 4, min32}));
  EXPECT_EQ(out[2].values, (std::vector<double>{1, 3, 1, -9223372036854775808.0, 4, 6, 4,
                                                -9223372036854775808.0}));
  // bool: 2 -> false, -1 -> false (the last), 4 and -5 -> true (the fill).
  EXPECT_EQ(out[3].values, (std::vector<double>{0, 0, 1, 1}));
  // A rank-0 index: one row of the table, -4 the first.
  EXPECT_EQ(out[4].shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(out[4].values, (std::vector<double>{0, 1}));
}

TEST(Interpreter, IotaAndACausalMask) {
  const auto g = kiln::trace("g", [] {
    auto n = kiln::sym("n");
    auto s = kiln::input("s", kiln::f32, {n, n});
    auto mask = kiln::iota({n, 1}, 0) >= kiln::iota({1, n}, 1);
    return kiln::outputs(kiln::iota({2, 3}, 1), kiln::iota({2, 3}, 0, kiln::f16),
                         kiln::where(mask, s, kiln::constant(-INFINITY)));
  });
  const auto out = interpret(g, {tensor(kiln::DType::f32, {3, 3}, iota_values(9))});
  EXPECT_EQ(out[0].dtype, kiln::DType::i64);
  EXPECT_EQ(out[0].values, (std::vector<double>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(out[1].dtype, kiln::DType::f16);
  EXPECT_EQ(out[1].values, (std::vector<double>{0, 0, 0, 1, 1, 1}));
  const double inf = INFINITY;
  EXPECT_EQ(out[2].values, (std::vector<double>{1, -inf, -inf, 4, 5, -inf, 7, 8, 9}));
}

}  // namespace
