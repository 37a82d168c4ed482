// The GPU suite's graphs: traced at build time into gpu_test_kernels, and
// traced again by gpu_check for the reference interpreter. The first eight are
// the benchmark rows (ANCHORS.md, "Fused kernels at 16384x4096"); the rest are
// there for correctness only, each exercising something the benchmark shapes
// never reach: widths that are not a multiple of the vector width, dynamic
// widths, 16-bit and integer types, broadcasting, odd outputs.
#include <cmath>

#include <kiln/graph.h>

namespace {

constexpr int64_t kWidth = 4096;

// 16384 is the benchmark's row count (static specialization with constant
// loop bounds); 64 a small hot size; anything else runs the general one.
kiln::SymDim bench_rows() { return kiln::sym("n", {.min = 1, .max = 1 << 20, .hot = {64, 16384}}); }

kiln::SymDim rows() { return kiln::sym("n", {.min = 1, .max = 1 << 20, .hot = {64}}); }

kiln::SymDim cols() { return kiln::sym("m", {.min = 1, .max = 1 << 16, .hot = {}}); }

kiln::Tensor to_f32(kiln::Tensor t) { return kiln::cast(t, kiln::f32); }

}  // namespace

// --- the benchmark rows, f32 ---------------------------------------------------

KILN_GRAPH(gelu_affine_f32) {
  auto n = bench_rows();
  auto x = kiln::input("x", kiln::f32, {n, kWidth});
  auto a = kiln::input("a", kiln::f32, {kWidth});
  auto b = kiln::input("b", kiln::f32, {kWidth});
  return kiln::outputs(kiln::gelu(x * a + b));
}

KILN_GRAPH(softmax_f32) {
  auto n = bench_rows();
  auto x = kiln::input("x", kiln::f32, {n, kWidth});
  return kiln::outputs(kiln::softmax(x));
}

KILN_GRAPH(layernorm_f32) {
  auto n = bench_rows();
  auto x = kiln::input("x", kiln::f32, {n, kWidth});
  auto w = kiln::input("w", kiln::f32, {kWidth});
  auto b = kiln::input("b", kiln::f32, {kWidth});
  return kiln::outputs(kiln::layernorm(x, w, b));
}

KILN_GRAPH(rmsnorm_f32) {
  auto n = bench_rows();
  auto x = kiln::input("x", kiln::f32, {n, kWidth});
  auto w = kiln::input("w", kiln::f32, {kWidth});
  return kiln::outputs(kiln::rmsnorm(x, w));
}

// --- the benchmark rows, bf16 in and out, f32 inside -----------------------------
// torch_peer.py computes the same math; the composites' eps (layernorm 1e-5,
// rmsnorm 1e-6) are the defaults in graph.h.

KILN_GRAPH(gelu_affine_bf16) {
  auto n = bench_rows();
  auto x = kiln::input("x", kiln::bf16, {n, kWidth});
  auto a = kiln::input("a", kiln::bf16, {kWidth});
  auto b = kiln::input("b", kiln::bf16, {kWidth});
  return kiln::outputs(kiln::cast(kiln::gelu(to_f32(x) * to_f32(a) + to_f32(b)), kiln::bf16));
}

KILN_GRAPH(softmax_bf16) {
  auto n = bench_rows();
  auto x = kiln::input("x", kiln::bf16, {n, kWidth});
  return kiln::outputs(kiln::softmax(x));  // casts to f32 and back inside
}

KILN_GRAPH(layernorm_bf16) {
  auto n = bench_rows();
  auto x = kiln::input("x", kiln::bf16, {n, kWidth});
  auto w = kiln::input("w", kiln::bf16, {kWidth});
  auto b = kiln::input("b", kiln::bf16, {kWidth});
  return kiln::outputs(kiln::layernorm(x, w, b));  // f32 inside, weights included
}

// DESIGN.md's example, spelled out: the normalization in f32, the weight
// applied in bf16.
KILN_GRAPH(rmsnorm_bf16) {
  auto n = bench_rows();
  auto x = kiln::input("x", kiln::bf16, {n, kWidth});
  auto w = kiln::input("w", kiln::bf16, {kWidth});
  auto r = kiln::rsqrt(kiln::mean(kiln::square(to_f32(x)), -1, true) + 1e-6f);
  return kiln::outputs(kiln::cast(to_f32(x) * r, kiln::bf16) * w);
}

// --- constant widths that are not a multiple of a vector or a warp -------------

namespace {

kiln::Outputs softmax_of_width(int64_t width) {
  return kiln::outputs(kiln::softmax(kiln::input("x", kiln::f32, {rows(), width})));
}

kiln::Outputs layernorm_of_width(int64_t width) {
  auto x = kiln::input("x", kiln::f32, {rows(), width});
  auto w = kiln::input("w", kiln::f32, {width});
  auto b = kiln::input("b", kiln::f32, {width});
  return kiln::outputs(kiln::layernorm(x, w, b));
}

kiln::Outputs rowreduce_of_width(int64_t width) {
  auto x = kiln::input("x", kiln::f32, {rows(), width});
  return kiln::Outputs({kiln::sum(x, -1), kiln::max(x, -1, true)}).named({"s", "mx"});
}

}  // namespace

KILN_GRAPH(softmax_w1000) { return softmax_of_width(1000); }
KILN_GRAPH(softmax_w33) { return softmax_of_width(33); }
KILN_GRAPH(softmax_w7) { return softmax_of_width(7); }
KILN_GRAPH(layernorm_w1000) { return layernorm_of_width(1000); }
KILN_GRAPH(layernorm_w33) { return layernorm_of_width(33); }
KILN_GRAPH(layernorm_w7) { return layernorm_of_width(7); }
KILN_GRAPH(rowreduce_w1000) { return rowreduce_of_width(1000); }
KILN_GRAPH(rowreduce_w33) { return rowreduce_of_width(33); }
KILN_GRAPH(rowreduce_w7) { return rowreduce_of_width(7); }

// --- a width known only at run time ------------------------------------------------

KILN_GRAPH(dyn_width_reduce) {
  auto n = rows();
  auto m = cols();
  auto x = kiln::input("x", kiln::f32, {n, m});
  return kiln::Outputs({kiln::sum(x, -1), kiln::mean(x, -1, true), kiln::max(x, -1),
                        kiln::min(x, -1, true), kiln::softmax(x)})
      .named({"s", "mean", "mx", "mn", "sm"});
}

KILN_GRAPH(dyn_width_layernorm) {
  auto n = rows();
  auto m = cols();
  auto x = kiln::input("x", kiln::f32, {n, m});
  auto w = kiln::input("w", kiln::f32, {m});
  auto b = kiln::input("b", kiln::f32, {m});
  return kiln::outputs(kiln::layernorm(x, w, b));
}

KILN_GRAPH(dyn_width_pointwise) {
  auto n = rows();
  auto m = cols();
  auto x = kiln::input("x", kiln::f32, {n, m});
  auto w = kiln::input("w", kiln::f32, {m});
  return kiln::outputs(kiln::tanh(x) * w + 1.0);
}

// --- f16 ----------------------------------------------------------------------------

KILN_GRAPH(f16_pointwise) {
  auto n = rows();
  auto x = kiln::input("x", kiln::f16, {n, 257});
  auto y = kiln::input("y", kiln::f16, {n, 257});
  return kiln::Outputs({x * y + kiln::sigmoid(x), kiln::maximum(x, y) - kiln::abs(y) * 0.5,
                        kiln::cast(kiln::exp(to_f32(x)), kiln::f16)})
      .named({"fma", "mix", "e"});
}

KILN_GRAPH(f16_reduce) {
  auto n = rows();
  auto m = cols();
  auto x = kiln::input("x", kiln::f16, {n, m});
  return kiln::Outputs({kiln::softmax(x), kiln::max(x, -1), kiln::sum(to_f32(x), -1, true)})
      .named({"sm", "mx", "s"});
}

// --- integers and bool --------------------------------------------------------------

KILN_GRAPH(i32_arith) {
  auto n = rows();
  auto a = kiln::input("a", kiln::i32, {n, 129});
  auto b = kiln::input("b", kiln::i32, {n, 129});
  return kiln::Outputs({a * b - a + b, kiln::maximum(a, b), kiln::minimum(a, b), kiln::abs(a - b),
                        kiln::neg(a), kiln::square(b), kiln::relu(a - 5), kiln::sum(a * b, -1),
                        kiln::max(a - b, -1, true)})
      .named({"poly", "mx", "mn", "absdiff", "negated", "sq", "relu", "rowsum", "rowmax"});
}

KILN_GRAPH(i64_arith) {
  auto n = rows();
  auto a = kiln::input("a", kiln::i64, {n, 65});
  auto b = kiln::input("b", kiln::i64, {n, 65});
  // Products of three values in [1, 9] times a large constant need 64 bits.
  auto big = a * b * a * 1000000000.0;
  return kiln::Outputs({big - b, kiln::minimum(a, b) * 7.0, kiln::sum(big, -1)})
      .named({"big", "mn", "rowsum"});
}

KILN_GRAPH(compare_where) {
  auto n = rows();
  auto a = kiln::input("a", kiln::i32, {n, 31});
  auto b = kiln::input("b", kiln::i32, {n, 31});
  auto c = kiln::input("c", kiln::boolean, {n, 1});  // broadcast along the row
  auto x = kiln::input("x", kiln::f32, {n, 31});
  auto y = kiln::input("y", kiln::f32, {n, 31});
  return kiln::Outputs({kiln::lt(a, b), kiln::le(a, b), kiln::gt(a, b), kiln::ge(a, b),
                        kiln::eq(a, b), kiln::ne(a, b), kiln::where(c, a, b),
                        kiln::where(a > b, x, y), kiln::logical_not(kiln::eq(c, a < b)),
                        kiln::where(x > 0.5, kiln::cast(a, kiln::i64), kiln::cast(b, kiln::i64))})
      .named({"lt", "le", "gt", "ge", "eq", "ne", "pick", "pickf", "xnor", "pick64"});
}

// --- broadcasting over three dimensions ---------------------------------------------

KILN_GRAPH(broadcast_3d) {
  auto bt = kiln::sym("bt", {.min = 1, .max = 1 << 16, .hot = {}});
  auto t = kiln::sym("t", {.min = 1, .max = 1 << 16, .hot = {}});
  auto p = kiln::input("p", kiln::f32, {bt, 1, 24});
  auto q = kiln::input("q", kiln::f32, {1, t, 24});
  auto r = kiln::input("r", kiln::f32, {bt, t, 1});
  auto v = kiln::input("v", kiln::f32, {24});
  auto s = p + q;  // [bt, t, 24]
  return kiln::Outputs({s * r + v, kiln::max(s, -1), kiln::sum(q * v, -1, true)})
      .named({"y", "rowmax", "qsum"});
}

// --- reductions without keepdim, down to a scalar -----------------------------------

KILN_GRAPH(reduce_keepdim_false) {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, 129});
  auto s = kiln::sum(x, -1);  // [n]
  return kiln::Outputs({s, kiln::mean(x, -1), kiln::max(x, -1), kiln::min(x, -1), kiln::sum(s, -1),
                        kiln::max(kiln::mean(x, -1), -1)})
      .named({"s", "mean", "mx", "mn", "total", "max_of_means"});
}

// --- several outputs: an input unchanged, a constant, a temp read twice -------------

KILN_GRAPH(multi_output) {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, 64});
  auto y = kiln::input("y", kiln::f32, {n, 64});
  auto p = x * y;
  return kiln::Outputs({p, x, kiln::constant(1.5), kiln::softmax(p), kiln::sum(p, -1), p})
      .named({"prod", "x_copy", "c", "sm", "rowsum", "prod_again"});
}

// --- every unary and binary op -----------------------------------------------------

KILN_GRAPH(unary_ops) {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, 77});
  auto ax = kiln::abs(x);  // inputs are never zero, so log and rsqrt stay finite
  return kiln::Outputs({kiln::exp(x), kiln::log(ax), kiln::tanh(x), kiln::sigmoid(x), kiln::relu(x),
                        kiln::sqrt(ax), kiln::rsqrt(ax), ax, kiln::neg(x), kiln::gelu(x),
                        kiln::sin(x), kiln::cos(x), kiln::square(x)})
      .named({"exp", "log", "tanh", "sigmoid", "relu", "sqrt", "rsqrt", "abs", "neg", "gelu", "sin",
              "cos", "square"});
}

KILN_GRAPH(binary_ops) {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, 77});
  auto y = kiln::input("y", kiln::f32, {n, 77});
  auto v = kiln::input("v", kiln::f32, {77});
  return kiln::Outputs({kiln::pow(kiln::abs(x) + 0.5, y), kiln::pow(x, 2.0), kiln::maximum(x, y),
                        kiln::minimum(x, y), x / y, 1.0 / x, x - y * v, kiln::maximum(x, 0.25),
                        kiln::minimum(x, -0.25)})
      .named({"pow", "pow2", "maximum", "minimum", "div", "recip", "fms", "clamp_lo", "clamp_hi"});
}

// --- reductions over other and several axes, prod, argmax, log_softmax ---------------
// Column kernels (a thread per output) for leading and middle axes, row kernels
// (a block per output) for trailing ones, and two-pass split reductions for
// few outputs over long runs (whole tensors, argmax over three rows of 40000;
// sum and min over those rows stay in the fused row path).

KILN_GRAPH(reduce_axes_f32) {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, 7, 33});
  return kiln::Outputs({kiln::sum(x, 0), kiln::mean(x, 1, true), kiln::max(x, {0, 2}),
                        kiln::min(x, {1, 2}), kiln::prod(x, 1), kiln::argmax(x, 0),
                        kiln::argmax(x, 1, true), kiln::argmax(x, -1), kiln::log_softmax(x, 1),
                        kiln::log_softmax(x), kiln::softmax(x, 0)})
      .named({"sum0", "mean1", "max02", "min12", "prod1", "argmax0", "argmax1", "argmax2", "logsm1",
              "logsm2", "sm0"});
}

KILN_GRAPH(reduce_axes_bf16) {
  auto n = rows();
  auto x = kiln::input("x", kiln::bf16, {n, 5, 64});
  return kiln::Outputs({kiln::sum(x, {0, 2}), kiln::mean(x, kiln::all_axes(x)), kiln::argmax(x, 1),
                        kiln::max(x, 0, true), kiln::log_softmax(x, 0), kiln::prod(x, {1}, true)})
      .named({"sum02", "mean_all", "argmax1", "max0", "logsm0", "prod1"});
}

KILN_GRAPH(reduce_split) {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, kWidth});
  auto u = kiln::input("u", kiln::f32, {3, 40000});
  auto w = kiln::input("w", kiln::i32, {n, 33});
  return kiln::Outputs({kiln::sum(x, kiln::all_axes(x)), kiln::mean(x, {0, 1}, true),
                        kiln::max(x, kiln::all_axes(x)), kiln::argmax(u, -1), kiln::sum(u, -1),
                        kiln::min(u, 1, true), kiln::sum(w, kiln::all_axes(w)), kiln::argmax(w, 0)})
      .named({"total", "mean_all", "max_all", "argmax_u", "sum_u", "min_u", "total_w", "argmax_w"});
}

// --- shape ops ------------------------------------------------------------------------
// A reshape read in place (by a row group and by a reduction), broadcasts that
// fuse, and the grid-stride index kernels; ids in [1, 9] less 5 index from the
// end of a table of 12, plus 3 past the end of one of 5 (the fill value).

KILN_GRAPH(shape_ops) {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, 6, 32});
  auto t = kiln::input("t", kiln::bf16, {12, 32});
  auto ids = kiln::input("ids", kiln::i32, {n});
  auto w = kiln::input("w", kiln::f32, {32});
  auto y = kiln::exp(x * 0.5);
  auto flat = kiln::reshape(y, {n, 192});
  auto causal = kiln::iota({n, 1}, 0) >= kiln::iota({1, n}, 1);
  return kiln::Outputs({kiln::softmax(flat), kiln::sum(flat, 0), kiln::transpose(x, 1, 2),
                        kiln::permute(y, {2, 0, 1}), kiln::slice(x, 2, 1, -1, 3),
                        kiln::concat({x, y}, 1), kiln::embedding(t, ids - 5),
                        kiln::gather(x, ids + 3, 1), kiln::broadcast_to(w, {n, 6, 32}) * x,
                        kiln::where(causal, kiln::constant(1.0), kiln::constant(-INFINITY)),
                        kiln::iota({n, 6}, 1, kiln::bf16)})
      .named({"softmax_flat", "sum_flat", "transpose", "permute", "slice", "concat", "embedding",
              "gather_fill", "broadcast", "causal", "iota"});
}

// Matmuls through cuBLASLt: a linear layer whose bias and relu run in the
// call's epilogue, a transposed operand, a batched product with a shared B,
// and one whose result a kernel reads (gelu). K stays short so f32 results
// are within f32's tolerance of the interpreter's exact sums.
KILN_GRAPH(matmul_bf16) {
  auto n = rows();
  auto x = kiln::input("x", kiln::bf16, {n, 96});
  auto w = kiln::input("w", kiln::bf16, {96, 160});
  auto b = kiln::input("b", kiln::bf16, {160});
  auto wt = kiln::input("wt", kiln::bf16, {160, 96});
  // Scaled by 1/8 (exactly, in the call's alpha) so that where the bias
  // cancels the product, the product's bf16 rounding, which an f32 sum of 96
  // terms may round one ulp apart from the interpreter's exact one, stays
  // within bf16's absolute tolerance.
  auto h = kiln::relu(kiln::matmul(x, w) * 0.125 + b);
  return kiln::Outputs({h, kiln::gelu(kiln::matmul(x, kiln::transpose(wt, 0, 1))),
                        kiln::matmul(kiln::reshape(x, {n, 2, 48}), kiln::reshape(w, {48, 320}))})
      .named({"linear_relu", "transposed_gelu", "batched"});
}

KILN_GRAPH(matmul_f32) {
  auto n = rows();
  auto a = kiln::input("a", kiln::f32, {3, n, 24});
  auto bt = kiln::input("bt", kiln::f32, {3, 40, 24});
  auto bias = kiln::input("bias", kiln::f32, {40});
  return kiln::Outputs({kiln::matmul(a, kiln::transpose(bt, -1, -2)) * 0.25 + bias})
      .named({"scaled_bias"});
}
