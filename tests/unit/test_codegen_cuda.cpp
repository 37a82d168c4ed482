// CUDA codegen without a GPU: the kernels' shapes (vectors, teams, rows kept
// in registers), their launch plans, determinism, and a real nvcc compile of
// every kernel for sm_80 and sm_90 through the Ninja driver, with ptxas's
// report checked for spills. Running them is tests/gpu's job.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gelu_narrow.h"  // tools/compiler/src: the compiler's internals
#include "kiln/compiler/cuda_codegen.h"
#include "kiln/compiler/index_extents.h"
#include "kiln/compiler/ir.h"
#include "kiln/compiler/ninja_driver.h"
#include "kiln/graph.h"

namespace {

namespace fs = std::filesystem;
using kiln::compiler::CudaLoweredGraph;
using kiln::compiler::lower_cuda;
using kiln::ir::Graph;

kiln::SymDim rows() { return kiln::sym("n", {.min = 1, .max = 1 << 20}); }

kiln::Outputs g_softmax() {
  auto x = kiln::input("x", kiln::f32, {rows(), 4096});
  return kiln::outputs(kiln::softmax(x));
}
kiln::Outputs g_layernorm_bf16() {
  auto n = rows();
  auto x = kiln::input("x", kiln::bf16, {n, 4096});
  auto w = kiln::input("w", kiln::bf16, {4096});
  auto b = kiln::input("b", kiln::bf16, {4096});
  auto y =
      kiln::layernorm(kiln::cast(x, kiln::f32), kiln::cast(w, kiln::f32), kiln::cast(b, kiln::f32));
  return kiln::outputs(kiln::cast(y, kiln::bf16));
}
kiln::Outputs g_gelu_affine() {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, 4096});
  auto a = kiln::input("a", kiln::f32, {4096});
  auto b = kiln::input("b", kiln::f32, {4096});
  return kiln::outputs(kiln::gelu(x * a + b));
}
kiln::Outputs g_scaled() {
  auto x = kiln::input("x", kiln::f32, {rows(), 4096});
  return kiln::outputs(x * 2.0 + 1.0);
}
kiln::Outputs g_narrow_rows() {
  auto x = kiln::input("x", kiln::f32, {rows(), 33});
  return kiln::outputs(kiln::max(x, -1), kiln::sum(kiln::exp(x), -1, true));
}
kiln::Outputs g_dynamic_width() {
  auto n = rows();
  auto m = kiln::sym("m", {.min = 1, .max = 1 << 16});
  auto x = kiln::input("x", kiln::f16, {n, m});
  return kiln::outputs(kiln::cast(
      kiln::rmsnorm(kiln::cast(x, kiln::f32), kiln::cast(x, kiln::f32) * 0.0f + 1.0f), kiln::f16));
}
kiln::Outputs g_broadcast3d() {
  auto b = kiln::sym("b", {.min = 1, .max = 64});
  auto t = kiln::sym("t", {.min = 1, .max = 64});
  auto x = kiln::input("x", kiln::f32, {b, 1, 16});
  auto y = kiln::input("y", kiln::f32, {1, t, 16});
  auto i = kiln::input("i", kiln::i32, {b, t, 16});
  return kiln::outputs(kiln::where(i > 4, x * y, x - y), kiln::tanh(x) + kiln::sigmoid(y));
}
kiln::Outputs g_copy_and_constant() {
  auto x = kiln::input("x", kiln::i64, {rows(), 8});
  return kiln::outputs(x, x * 3 + 1);
}

Graph traced(const char* name, kiln::GraphFunction f) {
  return kiln::ir::canonicalize(kiln::trace(name, f));
}

CudaLoweredGraph lower(const Graph& g, bool aligned, kiln::ir::SymbolValues values = {},
                       bool index32 = false) {
  if (values.empty()) values.assign(g.symbols.size(), -1);
  kiln::compiler::CudaCodegenOptions o;
  o.entry_prefix = "kiln_test_" + g.name + (aligned ? "_a" : "_u") + (index32 ? "_i32" : "");
  o.aligned16 = aligned;
  o.index32 = index32;
  return lower_cuda(g, values, o);
}

int64_t eval(const kiln::compiler::SizeExpr& e, const kiln::ir::SymbolValues& values) {
  return e.evaluate(values);
}

TEST(CodegenCuda, SoftmaxIsOneBlockPerRowWithTheRowInRegisters) {
  const Graph g = traced("softmax", &g_softmax);
  const CudaLoweredGraph l = lower(g, true);
  ASSERT_EQ(l.kernels.size(), 1u);
  EXPECT_TRUE(l.vectorized);
  const std::string& src = l.kernels[0].source;
  // x is read through the rows load (an L2 evict_last policy), stored plainly.
  EXPECT_NE(src.find("kiln_vload_rows<4>"), std::string::npos) << src;
  EXPECT_NE(src.find("kiln_vstore<4>"), std::string::npos);
  EXPECT_NE(src.find("__shfl_xor_sync"), std::string::npos);
  EXPECT_NE(src.find("kept in registers"), std::string::npos);
  // x is read once: one vector load in the source, in the first loop.
  size_t loads = 0;
  for (size_t at = src.find("kiln_vload_rows<4>(b0"); at != std::string::npos;
       at = src.find("kiln_vload_rows<4>(b0", at + 1)) {
    ++loads;
  }
  EXPECT_EQ(loads, 1u) << src;
  // One block per row, two vectors a thread: the grid is the row count.
  EXPECT_EQ(l.launches[0].block[0], 512u);
  EXPECT_EQ(eval(l.launches[0].grid[0], {1000}), 1000);
  EXPECT_EQ(eval(l.launches[0].grid[1], {1000}), 1);
}

TEST(CodegenCuda, UnalignedVariantUsesNoVectors) {
  const Graph g = traced("softmax", &g_softmax);
  const CudaLoweredGraph l = lower(g, false);
  EXPECT_FALSE(l.vectorized);
  EXPECT_EQ(l.kernels[0].source.find("kiln_vload"), std::string::npos);
}

TEST(CodegenCuda, Bf16LayernormMovesEightElementVectorsAndAccumulatesInF32) {
  const Graph g = traced("layernorm_bf16", &g_layernorm_bf16);
  const CudaLoweredGraph l = lower(g, true);
  ASSERT_EQ(l.kernels.size(), 1u);
  const std::string& src = l.kernels[0].source;
  // x (kept in registers) loads with the rows policy; w and b, read by every row, plainly.
  EXPECT_NE(src.find("kiln_vload_rows<8>(b0"), std::string::npos) << src;
  EXPECT_NE(src.find("kiln_vload<8>(b1"), std::string::npos) << src;
  EXPECT_NE(src.find("kiln_bf16_to_f32"), std::string::npos);
  EXPECT_NE(src.find("float a"), std::string::npos);  // f32 accumulators
  // w and b are read in one loop only: not kept in registers.
  EXPECT_EQ(src.find("alignas(16) uint16_t r1_"), std::string::npos) << src;
}

TEST(CodegenCuda, PointwiseGridCoversEveryVector) {
  const Graph g = traced("scaled", &g_scaled);
  const CudaLoweredGraph l = lower(g, true);
  ASSERT_EQ(l.kernels.size(), 1u);
  EXPECT_NE(l.kernels[0].source.find("Pointwise"), std::string::npos) << l.kernels[0].source;
  // 16384 rows of 4096 f32 in 4-element vectors, 256 threads a block, 2
  // vectors a thread.
  EXPECT_EQ(eval(l.launches[0].grid[0], {16384}), 16384 * 4096 / 4 / 256 / 2);
  EXPECT_EQ(eval(l.launches[0].grid[0], {1}), 2);  // one row: 1024 vectors
  const CudaLoweredGraph u = lower(g, false);
  EXPECT_EQ(eval(u.launches[0].grid[0], {16384}), 16384 * 4096 / 256 / 2);
}

kiln::Outputs g_gelu_affine_bf16() {
  auto n = rows();
  auto x = kiln::input("x", kiln::bf16, {n, 4096});
  auto a = kiln::input("a", kiln::bf16, {4096});
  auto b = kiln::input("b", kiln::bf16, {4096});
  auto f = [](kiln::Tensor t) { return kiln::cast(t, kiln::f32); };
  return kiln::outputs(kiln::cast(kiln::gelu(f(x) * f(a) + f(b)), kiln::bf16));
}

TEST(CodegenCuda, BroadcastOperandsOf16BitDataMakeAColumnKernel) {
  const Graph g = traced("gelu_affine_bf16", &g_gelu_affine_bf16);
  const CudaLoweredGraph l = lower(g, true);
  ASSERT_EQ(l.kernels.size(), 1u);
  const std::string& src = l.kernels[0].source;
  EXPECT_NE(src.find("Columns"), std::string::npos) << src;
  // a and b ([4096]) are loaded before the loop over rows, x inside it.
  const size_t loop = src.find("for (int64_t row = blockIdx.y");
  ASSERT_NE(loop, std::string::npos) << src;
  EXPECT_LT(src.find("kiln_vload<8>(b1"), loop);
  EXPECT_LT(src.find("kiln_vload<8>(b2"), loop);
  EXPECT_GT(src.find("kiln_vload<8>(b0"), loop);
  // 512 vectors a row: 2 blocks across; rows spread over at most 2048 blocks.
  EXPECT_EQ(eval(l.launches[0].grid[0], {16384}), 2);
  EXPECT_EQ(eval(l.launches[0].grid[1], {16384}), 2048);
  EXPECT_EQ(eval(l.launches[0].grid[1], {3}), 3);
  // Unaligned (1-element vectors) and f32 (memory-bound) stay pointwise.
  EXPECT_NE(lower(g, false).kernels[0].source.find("Pointwise"), std::string::npos);
  const Graph f32 = traced("gelu_affine", &g_gelu_affine);
  EXPECT_NE(lower(f32, true).kernels[0].source.find("Pointwise"), std::string::npos);
}

kiln::Outputs g_gelu_f32_and_bf16() {
  auto x = kiln::input("x", kiln::f32, {rows(), 64});
  auto g = kiln::gelu(x);
  return kiln::outputs(g, kiln::cast(g, kiln::bf16));
}
kiln::Outputs g_gelu_f16_and_bf16() {
  auto x = kiln::input("x", kiln::f32, {rows(), 64});
  auto g = kiln::gelu(x);
  return kiln::outputs(kiln::cast(g, kiln::f16), kiln::cast(g, kiln::bf16));
}

// A gelu whose value is only stored in 16 bits takes the cheaper formula of
// gelu_narrow.h for that type (f16's when both); one that also reaches
// memory in f32 keeps the rational.
TEST(CodegenCuda, GeluRoundedTo16BitsUsesTheNarrowFormula) {
  const std::string bf16 =
      lower(traced("gelu_affine_bf16", &g_gelu_affine_bf16), true).kernels[0].source;
  EXPECT_NE(bf16.find("kiln_gelu_bf16_f32("), std::string::npos) << bf16;
  EXPECT_EQ(bf16.find("kiln_gelu_f32("), std::string::npos) << bf16;
  const std::string f32 = lower(traced("gelu_affine", &g_gelu_affine), true).kernels[0].source;
  EXPECT_NE(f32.find("kiln_gelu_f32("), std::string::npos) << f32;
  EXPECT_EQ(f32.find("kiln_gelu_bf16_f32"), std::string::npos) << f32;
  const std::string both = lower(traced("gelu_both", &g_gelu_f32_and_bf16), true).kernels[0].source;
  EXPECT_NE(both.find("kiln_gelu_f32("), std::string::npos) << both;
  EXPECT_EQ(both.find("kiln_gelu_bf16_f32"), std::string::npos) << both;
  const std::string halves =
      lower(traced("gelu_halves", &g_gelu_f16_and_bf16), true).kernels[0].source;
  EXPECT_NE(halves.find("kiln_gelu_f16_f32("), std::string::npos) << halves;
  EXPECT_EQ(halves.find("kiln_gelu_bf16_f32"), std::string::npos) << halves;
}

// The fits' coefficients, in host arithmetic, against erf in double: the
// bounds the 16-bit outputs rely on.
void expect_gelu_fit_within(const kiln::compiler::codegen_detail::GeluNarrowFit& fit,
                            double bound) {
  using kiln::compiler::codegen_detail::gelu_narrow_host;
  const auto exact = [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); };
  double worst = 0;
  double worst_at = 0;
  for (int i = 0; i <= 600000; ++i) {
    const float x = -6.0f + 12.0f * static_cast<float>(i) / 600000.0f;
    const double want = exact(x);
    if (want == 0) continue;
    const double rel = std::fabs(gelu_narrow_host(fit, x) - want) / std::fabs(want);
    if (rel > worst) {
      worst = rel;
      worst_at = x;
    }
  }
  EXPECT_LT(worst, bound) << fit.function << " at x = " << worst_at;
  // Past the clamp: x itself above, a vanishing negative below, as gelu.
  for (float x : {6.5f, 9.0f, 100.0f, 3e38f}) EXPECT_FLOAT_EQ(gelu_narrow_host(fit, x), x);
  for (float x : {-6.5f, -9.0f, -100.0f, -3e38f}) {
    EXPECT_LE(gelu_narrow_host(fit, x), 0.0f) << fit.function;
    EXPECT_GT(gelu_narrow_host(fit, x), -1e-7f) << fit.function;
  }
  EXPECT_TRUE(std::isnan(gelu_narrow_host(fit, std::nanf(""))));
  EXPECT_EQ(gelu_narrow_host(fit, INFINITY), INFINITY);
  EXPECT_EQ(gelu_narrow_host(fit, 0.0f), 0.0f);
}

TEST(CodegenCuda, NarrowGeluFitsAreWithinTheirBounds) {
  expect_gelu_fit_within(kiln::compiler::codegen_detail::kGeluF16Fit, 2e-5);     // f16 ulp / 4
  expect_gelu_fit_within(kiln::compiler::codegen_detail::kGeluBf16Fit, 2.5e-4);  // bf16 ulp / 16
}

TEST(CodegenCuda, NarrowRowsUseAWarpPerRow) {
  const Graph g = traced("narrow", &g_narrow_rows);
  const CudaLoweredGraph l = lower(g, true);
  const std::string& src = l.kernels[0].source;
  EXPECT_NE(src.find("a warp per row"), std::string::npos) << src;
  EXPECT_FALSE(l.vectorized);  // 33 is no multiple of 4
  // Eight rows a block.
  EXPECT_EQ(eval(l.launches[0].grid[0], {17}), 3);
}

TEST(CodegenCuda, StaticShapesUse32BitIndexing) {
  const Graph g = traced("softmax", &g_softmax);
  EXPECT_NE(lower(g, true, {64}).kernels[0].source.find("const int C = 4096;"), std::string::npos);
  EXPECT_NE(lower(g, true).kernels[0].source.find("const int64_t C = 4096;"), std::string::npos);
}

// index32: the general specialization's variant behind an IndexWidth
// guard indexes with int although its sizes are symbols.
TEST(CodegenCuda, Index32MakesSymbolicKernelsIndexWithInt) {
  const Graph softmax = traced("softmax", &g_softmax);
  const std::string wide = lower(softmax, true).kernels[0].source;
  const std::string narrow = lower(softmax, true, {}, true).kernels[0].source;
  EXPECT_NE(wide.find("const int64_t C = 4096;"), std::string::npos) << wide;
  EXPECT_NE(narrow.find("const int C = 4096;"), std::string::npos) << narrow;
  EXPECT_NE(narrow.find("const int ROWS = "), std::string::npos) << narrow;
  EXPECT_EQ(narrow.find("const int64_t C"), std::string::npos) << narrow;

  // Every index declaration of every kernel, pointwise and rows, copies and
  // broadcasts: none is int64_t.
  const std::regex wide_index(R"((const int64_t (C|N|ROWS|NV|row|cv|c0|q|ow)\b)|(for \(int64_t))");
  for (const auto& [name, fn] : std::vector<std::pair<const char*, kiln::GraphFunction>>{
           {"gelu_affine", &g_gelu_affine},
           {"dynamic_width", &g_dynamic_width},
           {"broadcast3d", &g_broadcast3d},
           {"copy_and_constant", &g_copy_and_constant}}) {
    const Graph g = traced(name, fn);
    for (bool aligned : {true, false}) {
      const CudaLoweredGraph wide_graph = lower(g, aligned);
      const CudaLoweredGraph narrow_graph = lower(g, aligned, {}, true);
      ASSERT_EQ(wide_graph.kernels.size(), narrow_graph.kernels.size());
      bool any_wide = false;
      for (size_t k = 0; k < narrow_graph.kernels.size(); ++k) {
        any_wide = any_wide || std::regex_search(wide_graph.kernels[k].source, wide_index);
        EXPECT_FALSE(std::regex_search(narrow_graph.kernels[k].source, wide_index))
            << name << " kernel " << k << ":\n"
            << narrow_graph.kernels[k].source;
      }
      // The regex sees the default variant's 64-bit indices: it would catch
      // a narrow one that kept them.
      EXPECT_TRUE(any_wide) << name;
    }
  }
}

kiln::Outputs g_outer_sum() {
  auto n = kiln::sym("n", {.min = 1, .max = 1024});
  auto a = kiln::input("a", kiln::f32, {n, 1});
  auto b = kiln::input("b", kiln::f32, {1, 64});
  return kiln::outputs(kiln::sum(a + b, -1));
}

// What the IndexWidth guard of an int-indexed variant bounds: every buffer
// and every kernel domain, also one that no buffer has the shape of.
TEST(CodegenCuda, IndexExtentsCoverBuffersAndDomains) {
  using kiln::compiler::index_extents;
  using kiln::compiler::max_over_ranges;
  const Graph softmax = traced("softmax", &g_softmax);
  const kiln::ir::SymbolValues dynamic = {-1};
  const auto extents = index_extents(softmax, dynamic, lower(softmax, true).buffers);
  ASSERT_EQ(extents.size(), 1u);
  EXPECT_EQ(extents[0].to_string(softmax), "(n*4096)");
  EXPECT_EQ(max_over_ranges(softmax, dynamic, extents[0]), int64_t{1} << 32);
  EXPECT_EQ(max_over_ranges(softmax, {64}, extents[0]), 64 * 4096);

  // sum(a[n, 1] + b[1, 64]) stores n values but iterates n * 64.
  const Graph outer = traced("outer_sum", &g_outer_sum);
  std::vector<std::string> texts;
  for (const auto& e : index_extents(outer, dynamic, lower(outer, true).buffers)) {
    texts.push_back(e.to_string(outer));
  }
  EXPECT_NE(std::find(texts.begin(), texts.end(), "(n*64)"), texts.end());
  EXPECT_NE(std::find(texts.begin(), texts.end(), "n"), texts.end());
  EXPECT_NE(std::find(texts.begin(), texts.end(), "64"), texts.end());
  // n <= 1024: every extent stays small over the declared range.
  for (const auto& e : index_extents(outer, dynamic, lower(outer, true).buffers)) {
    const auto highest = max_over_ranges(outer, dynamic, e);
    ASSERT_TRUE(highest.has_value());
    EXPECT_LE(*highest, 1024 * 64);
  }
}

// Reductions over other and several axes, prod, argmax, log_softmax, and
// reductions long enough to split.
kiln::Outputs g_reductions() {
  auto n = rows();
  auto m = kiln::sym("m", {.min = 1, .max = 1 << 24});
  auto x = kiln::input("x", kiln::bf16, {n, 6, 5});
  auto y = kiln::input("y", kiln::f32, {n});
  auto z = kiln::input("z", kiln::f32, {4, m});
  auto w = kiln::input("w", kiln::i32, {n, 3});
  return kiln::outputs(kiln::sum(x, 0), kiln::mean(x, 1, true), kiln::max(x, {0, 2}),
                       kiln::min(x, {1, 2}), kiln::prod(x, 0), kiln::argmax(x, 1), kiln::argmax(x),
                       kiln::log_softmax(x, 0), kiln::sum(y), kiln::argmax(y),
                       kiln::sum(x, kiln::all_axes(x)), kiln::mean(z, -1), kiln::argmax(w, 0),
                       kiln::prod(w, {0, 1}, true));
}

TEST(CodegenCuda, ReductionsOverOtherAxesAreColumnOrRowKernels) {
  const Graph g = traced("reductions", &g_reductions);
  // Static n = 100: every column reduction takes one pass (see the split test).
  const CudaLoweredGraph L = lower(g, true, {100, 100});
  auto kernel_of = [&](const char* needle) -> const kiln::compiler::CudaKernel* {
    for (const auto& k : L.kernels) {
      if (k.source.find(needle) != std::string::npos) return &k;
    }
    return nullptr;
  };
  // sum over axis 0 of [n, 6, 5]: a thread per output, walking n.
  const auto* col = kernel_of("reduce_sum of input 'x' bf16 [n, 6, 5] over axes [0]");
  ASSERT_NE(col, nullptr);
  EXPECT_NE(col->source.find("Columns: a thread per output"), std::string::npos);
  EXPECT_NE(col->source.find("double acc = 0.0;"), std::string::npos) << col->source;
  // argmax over the last axis: a block per output, pairs through the shuffles.
  const auto* row = kernel_of("argmax of input 'x' bf16 [n, 6, 5] over axes [2]");
  ASSERT_NE(row, nullptr);
  EXPECT_NE(row->source.find("Rows: a block per output"), std::string::npos);
  EXPECT_NE(row->source.find("__shfl_down_sync(0xffffffffu, idx, d)"), std::string::npos);
  // max over {0, 2}: the last run (5) is short, so the threads stride over n.
  const auto* outer = kernel_of("reduce_max of input 'x' bf16 [n, 6, 5] over axes [0, 2]");
  ASSERT_NE(outer, nullptr);
  EXPECT_NE(
      outer->source.find("for (int64_t r0 = (int64_t)threadIdx.x; r0 < E0; r0 += blockDim.x)"),
      std::string::npos)
      << outer->source;
}

TEST(CodegenCuda, LongRowsWithFewOutputsSplitIntoTwoLaunches) {
  const Graph g = traced("reductions", &g_reductions);
  const CudaLoweredGraph L = lower(g, true);
  size_t splits = 0;
  for (size_t l = 0; l < L.launches.size(); ++l) {
    const auto& k = L.kernels.at(L.launches[l].kernel);
    if (k.source.find("Split rows, first pass") == std::string::npos) continue;
    ++splits;
    // The next launch finishes what this one started, through temps.
    ASSERT_LT(l + 1, L.launches.size());
    const auto& fin = L.kernels.at(L.launches[l + 1].kernel);
    EXPECT_EQ(fin.entry, k.entry + "_final");
    EXPECT_NE(fin.source.find("second pass"), std::string::npos);
    bool temp = false;
    for (uint32_t b : L.launches[l].buffers) {
      temp |= L.buffers.at(b).role == kiln::compiler::BufferRole::temp;
    }
    EXPECT_TRUE(temp);
    EXPECT_GE(eval(L.launches[l].grid[1], {1000000, 7}), 1);
    EXPECT_LE(eval(L.launches[l].grid[1], {1000000, 7}), 128);
  }
  // sum(y), argmax(y), sum of all of x, prod of all of w (mean of z's four rows
  // stays a fused row group).
  EXPECT_EQ(splits, 4u);
  // Columns over a symbolic n with few outputs split too: sum(x, 0), prod(x, 0),
  // argmax(w, 0), and log_softmax(x, 0)'s max and sum. (max(x, {0, 2}) is a
  // row kernel whose threads stride over n: its last run, 5, is short.)
  size_t column_splits = 0;
  for (size_t l = 0; l < L.launches.size(); ++l) {
    const auto& k = L.kernels.at(L.launches[l].kernel);
    if (k.source.find("Split columns, first pass") == std::string::npos) continue;
    ++column_splits;
    ASSERT_LT(l + 1, L.launches.size());
    EXPECT_EQ(L.kernels.at(L.launches[l + 1].kernel).entry, k.entry + "_final");
    // ceil(n / 64) parts, at most 128.
    EXPECT_EQ(eval(L.launches[l].grid[1], {1000, 7}), 16);
    EXPECT_EQ(eval(L.launches[l].grid[1], {1000000, 7}), 128);
  }
  EXPECT_EQ(column_splits, 5u);
  // sum(y) over n = 10^6: 128 blocks (the cap, under 245 of 4096 elements); over
  // n = 5000: 2.
  for (size_t l = 0; l < L.launches.size(); ++l) {
    const auto& k = L.kernels.at(L.launches[l].kernel);
    if (k.source.find("reduce_sum of input 'y'") == std::string::npos ||
        k.source.find("first pass") == std::string::npos)
      continue;
    EXPECT_EQ(eval(L.launches[l].grid[1], {1000000, 7}), 128);
    EXPECT_EQ(eval(L.launches[l].grid[1], {5000, 7}), 2);
  }
  // A static specialization whose rows and columns are short takes one launch
  // per reduction.
  const CudaLoweredGraph small = lower(g, true, {8, 100});
  for (const auto& k : small.kernels) {
    EXPECT_EQ(k.source.find("Split"), std::string::npos) << k.entry;
  }
}

// Views and index ops: a reshape is its root's buffer, an expand fuses,
// permute/slice/concat/gather/iota are grid-stride kernels of their own.
kiln::Outputs g_shape_ops() {
  auto n = rows();
  auto x = kiln::input("x", kiln::f32, {n, 8, 64});
  auto t = kiln::input("t", kiln::bf16, {1000, 64});
  auto ids = kiln::input("ids", kiln::i32, {n});
  auto w = kiln::input("w", kiln::f32, {64});
  auto y = kiln::exp(x);
  auto causal = kiln::iota({n, 1}, 0) >= kiln::iota({1, n}, 1);
  return kiln::outputs(kiln::reshape(y, {n, 512}) * 2.0,  // reads y's buffer in place
                       kiln::transpose(y, 1, 2), kiln::slice(x, 1, 0, 8, 3),
                       kiln::concat({x, y}, 1), kiln::embedding(t, ids),
                       kiln::expand(w, {n, 8, 64}) + x,
                       kiln::where(causal, kiln::sum(x, {1, 2}, true) * kiln::constant(1.0),
                                   kiln::constant(-INFINITY)),
                       kiln::iota({n, 8}, 1, kiln::bf16));
}

TEST(CodegenCuda, ShapeOpsAreIndexKernelsAndViewsCostNoKernel) {
  const Graph g = traced("shape_ops", &g_shape_ops);
  const CudaLoweredGraph l = lower(g, true);
  int index_kernels = 0;
  for (const auto& k : l.kernels) {
    if (k.source.find("// Index: one element per thread, grid-stride.") == std::string::npos) {
      continue;
    }
    ++index_kernels;
    EXPECT_NE(k.source.find("for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; "
                            "e < N; e += (int64_t)gridDim.x * blockDim.x)"),
              std::string::npos)
        << k.source;
  }
  // transpose, slice, concat, embedding, the two iotas of the mask, the bf16 iota.
  EXPECT_EQ(index_kernels, 7);
  for (const auto& launch : l.launches) EXPECT_GE(launch.block[0], 32u);
  // The reshape of y reads y's temp: the kernel computing y writes the
  // buffer the reshape's reader takes as input, and no kernel copies it.
  const kiln::ir::Node& out0 = g.node(g.outputs[0]);
  const int32_t reshape_id = out0.inputs[0];
  ASSERT_EQ(g.node(reshape_id).op, kiln::ir::Op::reshape);
  for (const auto& k : l.kernels) EXPECT_EQ(k.source.find("// Copy of node"), std::string::npos);
  // One element per thread: 16384 rows of 8 * 64 transposed take 16384 * 512 / 256 blocks.
  bool found = false;
  for (size_t i = 0; i < l.kernels.size(); ++i) {
    if (l.kernels[i].source.find("permute of") == std::string::npos) continue;
    found = true;
    EXPECT_EQ(eval(l.launches[i].grid[0], {16384}), 16384 * 512 / 256);
    EXPECT_EQ(l.launches[i].block[0], 256u);
  }
  EXPECT_TRUE(found);
  // Out-of-range indices select the fill value instead of loading.
  bool fill = false;
  for (const auto& k : l.kernels) fill |= k.source.find("(uint16_t)0x7fc0") != std::string::npos;
  EXPECT_TRUE(fill);
}

TEST(CodegenCuda, IndexKernelsIndexWithIntBehindTheIndexWidthGuard) {
  const Graph g = traced("shape_ops", &g_shape_ops);
  const std::regex wide_index(R"((const int64_t (N|i\d|qv)\b)|(for \(int64_t e)|(int64_t t = e))");
  const CudaLoweredGraph wide = lower(g, true);
  const CudaLoweredGraph narrow = lower(g, true, {}, true);
  ASSERT_EQ(wide.kernels.size(), narrow.kernels.size());
  int index_kernels = 0;
  for (size_t k = 0; k < narrow.kernels.size(); ++k) {
    if (narrow.kernels[k].source.find("// Index:") == std::string::npos) continue;
    ++index_kernels;
    EXPECT_TRUE(std::regex_search(wide.kernels[k].source, wide_index)) << wide.kernels[k].source;
    EXPECT_FALSE(std::regex_search(narrow.kernels[k].source, wide_index))
        << narrow.kernels[k].source;
  }
  EXPECT_EQ(index_kernels, 7);
  // Every extent an index kernel indexes: its result (the domain) and its
  // operands (plan buffers), e.g. the [n, n] mask's iotas and the n * 8 * 64 transpose.
  std::vector<std::string> texts;
  for (const auto& e : kiln::compiler::index_extents(g, {-1}, wide.buffers)) {
    texts.push_back(e.to_string(g));
  }
  for (const char* want : {"(n*512)", "(n*1024)", "(n*64)", "64000", "n", "(n*8)"}) {
    EXPECT_NE(std::find(texts.begin(), texts.end(), want), texts.end()) << want;
  }
}

TEST(CodegenCuda, LoweringIsDeterministic) {
  const Graph g = traced("layernorm_bf16", &g_layernorm_bf16);
  EXPECT_EQ(lower(g, true).kernels[0].source, lower(g, true).kernels[0].source);
}

// CudaCodegenOptions::nvrtc swaps the C library includes for a prelude and
// changes nothing else: the JIT compiles the kernel bodies the generator does.
TEST(CodegenCuda, NvrtcPreludeReplacesOnlyTheIncludes) {
  const std::string includes = "#include <stdint.h>\n#include <string.h>\n#include <math.h>\n\n";
  for (const auto& [name, fn] : std::vector<std::pair<const char*, kiln::GraphFunction>>{
           {"softmax", &g_softmax},
           {"layernorm_bf16", &g_layernorm_bf16},
           {"gelu_affine_bf16", &g_gelu_affine_bf16},
           {"dynamic_width", &g_dynamic_width},
           {"broadcast3d", &g_broadcast3d},
           {"copy_and_constant", &g_copy_and_constant},
           {"shape_ops", &g_shape_ops}}) {
    const Graph g = traced(name, fn);
    for (bool aligned : {true, false}) {
      kiln::compiler::CudaCodegenOptions o;
      o.entry_prefix = std::string("k_") + name;
      o.aligned16 = aligned;
      const kiln::ir::SymbolValues values(g.symbols.size(), -1);
      const CudaLoweredGraph nvcc = lower_cuda(g, values, o);
      o.nvrtc = true;
      const CudaLoweredGraph nvrtc = lower_cuda(g, values, o);
      ASSERT_EQ(nvcc.kernels.size(), nvrtc.kernels.size());
      for (size_t k = 0; k < nvcc.kernels.size(); ++k) {
        const std::string& a = nvcc.kernels[k].source;
        const std::string& b = nvrtc.kernels[k].source;
        EXPECT_EQ(nvcc.kernels[k].entry, nvrtc.kernels[k].entry);
        const size_t at = a.find(includes);
        ASSERT_NE(at, std::string::npos) << a;
        EXPECT_EQ(b.find("#include"), std::string::npos) << b;
        // The prelude ends at its first blank line; the rest is the same text.
        const size_t prelude = b.find("// NVRTC: ");
        ASSERT_EQ(prelude, at) << b;
        const size_t end = b.find("\n\n", prelude);
        ASSERT_NE(end, std::string::npos);
        EXPECT_EQ(b.substr(0, at), a.substr(0, at));
        EXPECT_EQ(b.substr(end + 2), a.substr(at + includes.size())) << name << " kernel " << k;
        for (const char* defined : {"typedef long int64_t;", "typedef unsigned short uint16_t;",
                                    "#define INFINITY", "#define NAN", "#define INT64_MIN"}) {
          EXPECT_NE(b.find(defined), std::string::npos) << defined;
        }
      }
    }
  }
}

TEST(CodegenCuda, CompileFlagsNameTheArch) {
  const auto flags = kiln::compiler::cuda_compile_flags("sm_90");
  EXPECT_NE(std::find(flags.begin(), flags.end(), "-arch=sm_90"), flags.end());
  EXPECT_THROW(kiln::compiler::cuda_compile_flags("sm_9x"), std::invalid_argument);
  EXPECT_THROW(kiln::compiler::cuda_compile_flags("compute_90"), std::invalid_argument);
}

#ifdef KILN_TEST_NVCC
// Every kernel of every graph above, aligned and unaligned, static and
// dynamic, compiled by nvcc for sm_80 and sm_90 (PTX too for sm_90); none
// may spill.
TEST(CodegenCuda, EveryKernelCompilesForSm80AndSm90WithoutSpills) {
  const std::vector<std::pair<const char*, kiln::GraphFunction>> graphs = {
      {"softmax", &g_softmax},
      {"layernorm_bf16", &g_layernorm_bf16},
      {"gelu_affine", &g_gelu_affine},
      {"narrow", &g_narrow_rows},
      {"dynamic_width", &g_dynamic_width},
      {"broadcast3d", &g_broadcast3d},
      {"copy_and_constant", &g_copy_and_constant}};
  kiln::compiler::NinjaBuildRequest req;
  req.work_dir = fs::path(KILN_TEST_BINARY_DIR) / "codegen_cuda_work";
  req.nvcc = KILN_TEST_NVCC;
  req.ninja = KILN_TEST_NINJA;
  for (const char* arch : {"sm_80", "sm_90"}) {
    kiln::compiler::CudaBuild cb;
    cb.name = std::string("cuda-") + arch;
    cb.nvcc_flags = kiln::compiler::cuda_compile_flags(arch);
    cb.ptx = std::string(arch) == "sm_90";
    for (const auto& [name, fn] : graphs) {
      const Graph g = traced(name, fn);
      kiln::ir::SymbolValues statics(g.symbols.size(), 64);
      for (const auto& values : {kiln::ir::SymbolValues(g.symbols.size(), -1), statics}) {
        for (bool aligned : {true, false}) {
          // The int-indexed variant exists for symbolic sizes only.
          for (bool index32 : {false, true}) {
            if (index32 && values[0] >= 0) continue;
            for (const auto& k : lower(g, aligned, values, index32).kernels) {
              const std::string file = k.entry + (values[0] < 0 ? "_dyn" : "_st") + ".cu";
              cb.sources.push_back({file, k.source});
            }
          }
        }
      }
    }
    req.cuda.push_back(std::move(cb));
  }
  ASSERT_NO_THROW(kiln::compiler::run_ninja_build(req));
  size_t reports = 0;
  const std::regex spill(R"((\d+) bytes spill stores, (\d+) bytes spill loads)");
  for (size_t b = 0; b < req.cuda.size(); ++b) {
    for (size_t s = 0; s < req.cuda[b].sources.size(); ++s) {
      const fs::path cubin = kiln::compiler::cuda_output(req, b, s, false);
      EXPECT_GT(fs::file_size(cubin), 0u);
      if (req.cuda[b].ptx) {
        EXPECT_GT(fs::file_size(kiln::compiler::cuda_output(req, b, s, true)), 0u);
      }
      std::ifstream in(fs::path(cubin).replace_extension(".ptxas"));
      std::stringstream text;
      text << in.rdbuf();
      const std::string report = text.str();
      std::smatch m;
      ASSERT_TRUE(std::regex_search(report, m, spill)) << cubin << ":\n" << report;
      EXPECT_EQ(m[1].str(), "0") << cubin << " spills:\n" << report;
      EXPECT_EQ(m[2].str(), "0") << cubin << " spills:\n" << report;
      ++reports;
    }
  }
  EXPECT_GE(reports, 2 * 9 * 6u);
}

// The shape ops' kernels, 64- and 32-bit indexed, dynamic and static, for
// sm_80 and sm_90; none may spill.
TEST(CodegenCuda, ShapeOpKernelsCompileForSm80AndSm90WithoutSpills) {
  kiln::compiler::NinjaBuildRequest req;
  req.work_dir = fs::path(KILN_TEST_BINARY_DIR) / "codegen_cuda_shape_work";
  req.nvcc = KILN_TEST_NVCC;
  req.ninja = KILN_TEST_NINJA;
  const Graph g = traced("shape_ops", &g_shape_ops);
  for (const char* arch : {"sm_80", "sm_90"}) {
    kiln::compiler::CudaBuild cb;
    cb.name = std::string("cuda-") + arch;
    cb.nvcc_flags = kiln::compiler::cuda_compile_flags(arch);
    for (int variant = 0; variant < 3; ++variant) {
      const kiln::ir::SymbolValues values = {variant == 2 ? 64 : -1};
      const std::string suffix = variant == 0 ? "_dyn" : variant == 1 ? "_i32" : "_st";
      for (const auto& k : lower(g, true, values, variant == 1).kernels) {
        cb.sources.push_back({k.entry + suffix + ".cu", k.source});
      }
    }
    req.cuda.push_back(std::move(cb));
  }
  ASSERT_NO_THROW(kiln::compiler::run_ninja_build(req));
  const std::regex spill(R"((\d+) bytes spill stores, (\d+) bytes spill loads)");
  size_t reports = 0;
  for (size_t b = 0; b < req.cuda.size(); ++b) {
    for (size_t s = 0; s < req.cuda[b].sources.size(); ++s) {
      const fs::path cubin = kiln::compiler::cuda_output(req, b, s, false);
      EXPECT_GT(fs::file_size(cubin), 0u);
      std::ifstream in(fs::path(cubin).replace_extension(".ptxas"));
      std::stringstream text;
      text << in.rdbuf();
      std::smatch m;
      const std::string report = text.str();
      ASSERT_TRUE(std::regex_search(report, m, spill)) << cubin << ":\n" << report;
      EXPECT_EQ(m[1].str(), "0") << cubin << " spills:\n" << report;
      EXPECT_EQ(m[2].str(), "0") << cubin << " spills:\n" << report;
      ++reports;
    }
  }
  EXPECT_GE(reports, 2 * 3 * 7u);
}

// The reductions' kernels (columns, rows, both passes of a split), dynamic
// and static, for sm_80 and sm_90; none may spill.
TEST(CodegenCuda, ReductionKernelsCompileForSm80AndSm90WithoutSpills) {
  kiln::compiler::NinjaBuildRequest req;
  req.work_dir = fs::path(KILN_TEST_BINARY_DIR) / "codegen_cuda_reduce_work";
  req.nvcc = KILN_TEST_NVCC;
  req.ninja = KILN_TEST_NINJA;
  const Graph g = traced("reductions", &g_reductions);
  for (const char* arch : {"sm_80", "sm_90"}) {
    kiln::compiler::CudaBuild cb;
    cb.name = std::string("cuda-") + arch;
    cb.nvcc_flags = kiln::compiler::cuda_compile_flags(arch);
    for (const auto& values :
         {kiln::ir::SymbolValues(g.symbols.size(), -1), kiln::ir::SymbolValues{64, 100000}}) {
      for (const auto& k : lower(g, true, values).kernels) {
        cb.sources.push_back({k.entry + (values[0] < 0 ? "_dyn" : "_st") + ".cu", k.source});
      }
    }
    req.cuda.push_back(std::move(cb));
  }
  ASSERT_NO_THROW(kiln::compiler::run_ninja_build(req));
  const std::regex spill(R"((\d+) bytes spill stores, (\d+) bytes spill loads)");
  size_t reports = 0;
  for (size_t b = 0; b < req.cuda.size(); ++b) {
    for (size_t s = 0; s < req.cuda[b].sources.size(); ++s) {
      const fs::path cubin = kiln::compiler::cuda_output(req, b, s, false);
      EXPECT_GT(fs::file_size(cubin), 0u);
      std::ifstream in(fs::path(cubin).replace_extension(".ptxas"));
      std::stringstream text;
      text << in.rdbuf();
      const std::string report = text.str();
      std::smatch m;
      ASSERT_TRUE(std::regex_search(report, m, spill)) << cubin << ":\n" << report;
      EXPECT_EQ(m[1].str(), "0") << cubin << " spills:\n" << report;
      EXPECT_EQ(m[2].str(), "0") << cubin << " spills:\n" << report;
      ++reports;
    }
  }
  EXPECT_GE(reports, 2 * 2 * 14u);
}
#endif

}  // namespace
