// The quickstart's graphs: traced at build time by the generator, never
// compiled into the application's kernels path.
#include <kiln/graph.h>

namespace {

constexpr int64_t kWidth = 4096;

kiln::SymDim rows() {
  // 16384 is the benchmark's size; 64 is the quickstart's.
  return kiln::sym("n", {.min = 1, .max = 1 << 20, .hot = {64, 16384}});
}

}  // namespace

KILN_GRAPH(gelu_affine) {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, kWidth});
  auto a = kiln::input("a", kiln::f32, {kWidth});
  auto b = kiln::input("b", kiln::f32, {kWidth});
  return kiln::outputs(kiln::gelu(x * a + b));
}

KILN_GRAPH(softmax) {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, kWidth});
  return kiln::outputs(kiln::softmax(x));
}

KILN_GRAPH(layernorm) {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, kWidth});
  auto w = kiln::input("w", kiln::f32, {kWidth});
  auto b = kiln::input("b", kiln::f32, {kWidth});
  return kiln::outputs(kiln::layernorm(x, w, b));
}

KILN_GRAPH(rmsnorm) {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, kWidth});
  auto w = kiln::input("w", kiln::f32, {kWidth});
  return kiln::outputs(kiln::rmsnorm(x, w));
}

// DESIGN.md's example: bf16 in and out, f32 inside.
KILN_GRAPH(rmsnorm_bf16) {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20, .hot = {1, 8, 64}});
  auto x = kiln::input("x", kiln::bf16, {n, kWidth});
  auto w = kiln::input("w", kiln::bf16, {kWidth});
  auto r = kiln::rsqrt(kiln::mean(kiln::square(kiln::cast(x, kiln::f32)), -1, true) + 1e-6f);
  return kiln::outputs(kiln::cast(kiln::cast(x, kiln::f32) * r, kiln::bf16) * w);
}

// sin_chain, the 10,000-op graph, is in sin_chain.cpp (the load benchmark
// builds it alone).
