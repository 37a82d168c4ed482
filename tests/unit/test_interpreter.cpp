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

}  // namespace
