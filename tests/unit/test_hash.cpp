// The structure hash ignores names and trace order; the key changes with
// every component that changes the compiled code.
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/hash.h"
#include "kiln/graph.h"

namespace {

using kiln::compiler::combine_key;
using kiln::compiler::key_components;
using kiln::compiler::KeyInputs;
using kiln::compiler::structure_hash;

kiln::Outputs base() {
  auto n = kiln::sym("n", {.max = 1024});
  auto x = kiln::input("x", kiln::f32, {n, 64});
  return kiln::outputs(kiln::exp(x) * 2.0f + 1.0f);
}
kiln::Outputs renamed() {
  auto n = kiln::sym("rows", {.max = 1024});
  auto x = kiln::input("activations", kiln::f32, {n, 64});
  return kiln::outputs(kiln::exp(x) * 2.0f + 1.0f);
}
kiln::Outputs other_constant() {
  auto n = kiln::sym("n", {.max = 1024});
  auto x = kiln::input("x", kiln::f32, {n, 64});
  return kiln::outputs(kiln::exp(x) * 3.0f + 1.0f);
}
kiln::Outputs other_dtype() {
  auto n = kiln::sym("n", {.max = 1024});
  auto x = kiln::input("x", kiln::f64, {n, 64});
  return kiln::outputs(kiln::exp(x) * 2.0f + 1.0f);
}
kiln::Outputs other_op() {
  auto n = kiln::sym("n", {.max = 1024});
  auto x = kiln::input("x", kiln::f32, {n, 64});
  return kiln::outputs(kiln::sin(x) * 2.0f + 1.0f);
}
kiln::Outputs other_shape() {
  auto n = kiln::sym("n", {.max = 1024});
  auto x = kiln::input("x", kiln::f32, {n, 128});
  return kiln::outputs(kiln::exp(x) * 2.0f + 1.0f);
}
// Two independent branches traced in the opposite order.
kiln::Outputs order_a() {
  auto x = kiln::input("x", kiln::f32, {8});
  auto y = kiln::input("y", kiln::f32, {8});
  auto a = kiln::exp(x);
  auto b = kiln::sin(y);
  return kiln::outputs(a + b);
}
kiln::Outputs order_b() {
  auto x = kiln::input("x", kiln::f32, {8});
  auto y = kiln::input("y", kiln::f32, {8});
  auto b = kiln::sin(y);
  auto a = kiln::exp(x);
  return kiln::outputs(a + b);
}

KeyInputs inputs(std::string tag = "") {
  return KeyInputs{"cpu:x86-64-v3", "opts", "clang 14", std::move(tag), {-1}};
}

kiln::compiler::Hash128 key_of(kiln::GraphFunction f, const KeyInputs& in = inputs()) {
  return combine_key(key_components(kiln::trace("g", f), in));
}

TEST(Hash, RenamingInputsAndSymbolsKeepsStructureAndKey) {
  EXPECT_EQ(structure_hash(kiln::trace("g", &base)), structure_hash(kiln::trace("h", &renamed)));
  EXPECT_EQ(key_of(&base), key_of(&renamed));
}

TEST(Hash, TraceOrderOfIndependentNodesDoesNotMatter) {
  EXPECT_EQ(structure_hash(kiln::trace("g", &order_a)), structure_hash(kiln::trace("g", &order_b)));
}

TEST(Hash, ChangedConstantChangesStructureAndKey) {
  EXPECT_NE(structure_hash(kiln::trace("g", &base)),
            structure_hash(kiln::trace("g", &other_constant)));
  EXPECT_NE(key_of(&base), key_of(&other_constant));
}

TEST(Hash, ChangedDtypeChangesKeyButNotStructure) {
  const auto a = key_components(kiln::trace("g", &base), inputs());
  const auto b = key_components(kiln::trace("g", &other_dtype), inputs());
  EXPECT_EQ(a.structure, b.structure);
  EXPECT_NE(a.dtypes, b.dtypes);
  EXPECT_NE(combine_key(a), combine_key(b));
}

TEST(Hash, ChangedOpChangesStructureAndKey) {
  EXPECT_NE(structure_hash(kiln::trace("g", &base)), structure_hash(kiln::trace("g", &other_op)));
  EXPECT_NE(key_of(&base), key_of(&other_op));
}

kiln::Outputs reduce_02() {
  return kiln::outputs(kiln::sum(kiln::input("x", kiln::f32, {2, 3, 4}), {0, 2}));
}
kiln::Outputs reduce_12() {
  return kiln::outputs(kiln::sum(kiln::input("x", kiln::f32, {2, 3, 4}), {1, 2}));
}
kiln::Outputs reduce_0() {
  return kiln::outputs(kiln::sum(kiln::input("x", kiln::f32, {2, 3, 4}), 0));
}
kiln::Outputs argmax_0() {
  return kiln::outputs(kiln::argmax(kiln::input("x", kiln::f32, {2, 3, 4}), 0));
}

TEST(Hash, ReducedAxesChangeTheStructure) {
  const auto a = structure_hash(kiln::trace("g", &reduce_02));
  const auto b = structure_hash(kiln::trace("g", &reduce_12));
  const auto c = structure_hash(kiln::trace("g", &reduce_0));
  const auto d = structure_hash(kiln::trace("g", &argmax_0));
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);  // {0, 2} against {0}: same `axis`, other `axes`
  EXPECT_NE(c, d);
}

TEST(Hash, ChangedShapeChangesOnlyTheShapeComponent) {
  const auto a = key_components(kiln::trace("g", &base), inputs());
  const auto b = key_components(kiln::trace("g", &other_shape), inputs());
  EXPECT_EQ(a.structure, b.structure);
  EXPECT_EQ(a.dtypes, b.dtypes);
  EXPECT_NE(a.shapes, b.shapes);
}

TEST(Hash, TagTargetStaticValuesAndCompilerEachChangeTheKey) {
  const auto g = kiln::trace("g", &base);
  const auto k = combine_key(key_components(g, inputs()));
  EXPECT_NE(k, combine_key(key_components(g, inputs("prod-v2"))));
  auto other_target = inputs();
  other_target.target = "cpu:x86-64";
  EXPECT_NE(k, combine_key(key_components(g, other_target)));
  auto static_n = inputs();
  static_n.static_values = {8};
  EXPECT_NE(k, combine_key(key_components(g, static_n)));
  auto other_compiler = inputs();
  other_compiler.compiler_identity = "clang 15";
  EXPECT_NE(k, combine_key(key_components(g, other_compiler)));
  // And the same inputs give the same key.
  EXPECT_EQ(k, combine_key(key_components(kiln::trace("g", &base), inputs())));
}

kiln::Outputs hot_8() {
  auto n = kiln::sym("n", {.max = 1024, .hot = {8}});
  auto x = kiln::input("x", kiln::f32, {n, 64});
  return kiln::outputs(kiln::exp(x) * 2.0f + 1.0f);
}
kiln::Outputs hot_64() {
  auto n = kiln::sym("n", {.max = 1024, .hot = {64}});
  auto x = kiln::input("x", kiln::f32, {n, 64});
  return kiln::outputs(kiln::exp(x) * 2.0f + 1.0f);
}
kiln::Outputs narrower_range() {
  auto n = kiln::sym("n", {.max = 512});
  auto x = kiln::input("x", kiln::f32, {n, 64});
  return kiln::outputs(kiln::exp(x) * 2.0f + 1.0f);
}

// Hot values pick which specializations exist, not what any one of them
// compiles to: packages built with other hot values share keys (kiln merge
// skips what the base already has). The declared range stays in the key.
TEST(Hash, HotValuesDoNotChangeTheKeyButRangesAndStaticValuesDo) {
  EXPECT_EQ(key_of(&base), key_of(&hot_8));
  EXPECT_EQ(key_of(&hot_8), key_of(&hot_64));
  auto static_8 = inputs();
  static_8.static_values = {8};
  EXPECT_EQ(key_of(&hot_8, static_8), key_of(&hot_64, static_8));
  EXPECT_NE(key_of(&hot_8, static_8), key_of(&hot_8));
  EXPECT_NE(key_of(&base), key_of(&narrower_range));
}

kiln::Outputs old_ops() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::bf16, {n, 6, 5});
  return kiln::outputs(kiln::sum(x, {0, 2}), kiln::argmax(x, 1), kiln::log_softmax(x, 0),
                       kiln::prod(x, -1, true), kiln::layernorm(x, x, x), kiln::where(x > x, x, x));
}

// The shape ops hash fields of their own; graphs of the other ops keep the
// hashes they had before those ops existed (these were computed then), so
// packages and caches built earlier still match.
TEST(Hash, GraphsOfTheOlderOpsKeepTheirStructureHashes) {
  EXPECT_EQ(structure_hash(kiln::trace("g", &base)).hex(), "8e510487c98ef6c4452341c8a9a62e4d");
  EXPECT_EQ(structure_hash(kiln::trace("g", &old_ops)).hex(), "0fc0c1947268b5ff7f117b8f19b4ce44");
}

int g_variant = 0;
kiln::Outputs shape_ops() {
  auto x = kiln::input("x", kiln::f32, {4, 6, 8});
  auto i = kiln::input("i", kiln::i32, {3});
  const int v = g_variant;
  return kiln::outputs(
      kiln::permute(x, v == 1 ? std::vector<int>{2, 0, 1} : std::vector<int>{1, 2, 0}),
      kiln::slice(x, v == 2 ? 2 : 1, 1, 4, v == 3 ? 2 : 1), kiln::concat({x, x}, v == 4 ? 1 : 0),
      kiln::gather(x, i, v == 5 ? 1 : 0), kiln::iota({4, 4}, v == 6 ? 1 : 0));
}

TEST(Hash, EveryShapeOpParameterChangesTheStructure) {
  std::vector<kiln::compiler::Hash128> hashes;
  for (g_variant = 0; g_variant <= 6; ++g_variant) {
    hashes.push_back(structure_hash(kiln::trace("g", &shape_ops)));
    for (size_t k = 0; k + 1 < hashes.size(); ++k) {
      EXPECT_NE(hashes[k], hashes.back()) << "variants " << k << " and " << g_variant;
    }
  }
  g_variant = 0;
  EXPECT_EQ(hashes[0], structure_hash(kiln::trace("g", &shape_ops)));
}

TEST(Hash, HexIsStable) {
  const auto h = kiln::compiler::hash_string("kiln");
  EXPECT_EQ(h.hex().size(), 32u);
  EXPECT_EQ(h, kiln::compiler::hash_string("kiln"));
  EXPECT_NE(h, kiln::compiler::hash_string("kilm"));
}

}  // namespace
