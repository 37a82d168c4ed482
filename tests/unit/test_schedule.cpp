// The fusion scheduler: group counts, domains, phases and materialization.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/ir.h"
#include "kiln/compiler/schedule.h"
#include "kiln/graph.h"

namespace {

using kiln::compiler::NodeRole;
using kiln::compiler::Schedule;
using kiln::compiler::schedule_graph;
using kiln::ir::Graph;
using kiln::ir::Op;

Graph traced(const char* name, kiln::GraphFunction f) {
  return kiln::ir::canonicalize(kiln::trace(name, f));
}

// Every edge between computed nodes points to the same or a later group, and
// every node read by a later group (or returned) is materialized.
void expect_valid(const Graph& g, const Schedule& s) {
  for (size_t id = 0; id < g.nodes.size(); ++id) {
    const auto& n = g.nodes[id];
    const bool leaf = n.op == Op::input || n.op == Op::constant;
    if (leaf) {
      EXPECT_EQ(s.group_of[id], -1);
      continue;
    }
    if (!s.live[id]) continue;
    if (n.op == Op::reshape) {
      // A view: no group, no buffer of its own; its computed root has one,
      // written before any reader of the view runs.
      EXPECT_EQ(s.group_of[id], -1) << "node " << id;
      EXPECT_FALSE(s.materialized[id]) << "node " << id;
      const int32_t root = kiln::compiler::view_root(g, static_cast<int32_t>(id));
      const auto r = static_cast<size_t>(root);
      if (g.node(root).op == Op::input) continue;
      EXPECT_TRUE(s.materialized[r]) << "root " << root;
      for (size_t reader = id + 1; reader < g.nodes.size(); ++reader) {
        const auto& ins = g.nodes[reader].inputs;
        if (s.group_of[reader] < 0 ||
            std::find(ins.begin(), ins.end(), static_cast<int32_t>(id)) == ins.end())
          continue;
        EXPECT_GT(s.group_of[reader], s.group_of[r]) << "reader " << reader << " of " << id;
      }
      continue;
    }
    if (s.group_of[id] < 0) {
      // Not computed by any kernel: every reader recomputes it.
      EXPECT_TRUE(s.inlinable[id]) << "node " << id;
      EXPECT_FALSE(s.materialized[id]) << "node " << id;
      continue;
    }
    for (int32_t in : n.inputs) {
      const auto u = static_cast<size_t>(in);
      const int32_t gi = s.group_of[u];
      if (gi == s.group_of[id]) continue;
      if (s.inlinable[u]) continue;  // recomputed by the reader
      if (g.node(in).op == Op::input || g.node(in).op == Op::constant) continue;
      if (g.node(in).op == Op::reshape) continue;  // checked with the view
      EXPECT_GE(gi, 0) << "edge " << in << " -> " << id;
      EXPECT_LT(gi, s.group_of[id]) << "edge " << in << " -> " << id;
      EXPECT_TRUE(s.materialized[u]) << "node " << in;
    }
  }
  for (int32_t o : g.outputs) {
    const auto& n = g.node(o);
    if (n.op == Op::input || n.op == Op::constant || n.op == Op::reshape) {
      const bool copied =
          std::any_of(s.groups.begin(), s.groups.end(),
                      [&](const kiln::compiler::FusedGroup& G) { return G.copy_of == o; });
      EXPECT_TRUE(copied) << "output node " << o << " needs a copy group";
    } else {
      EXPECT_TRUE(s.materialized[static_cast<size_t>(o)]);
      EXPECT_GE(s.group_of[static_cast<size_t>(o)], 0);
    }
  }
  // Each node appears in exactly its group's list, in topological order;
  // every group writes something.
  for (size_t gi = 0; gi < s.groups.size(); ++gi) {
    const auto& G = s.groups[gi];
    EXPECT_TRUE(std::is_sorted(G.nodes.begin(), G.nodes.end()));
    for (int32_t id : G.nodes) {
      EXPECT_EQ(s.group_of[static_cast<size_t>(id)], static_cast<int32_t>(gi));
    }
    if (G.index_of >= 0) {
      EXPECT_EQ(G.nodes, std::vector<int32_t>{G.index_of});
    }
    if (G.copy_of < 0) {
      EXPECT_TRUE(std::any_of(G.nodes.begin(), G.nodes.end(), [&](int32_t id) {
        return s.materialized[static_cast<size_t>(id)] != 0;
      }));
    }
  }
}

size_t materialized_count(const Schedule& s) {
  return static_cast<size_t>(std::count(s.materialized.begin(), s.materialized.end(), 1));
}

kiln::Outputs g_sin_chain() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n});
  auto y = x;
  for (int i = 0; i < 10000; ++i) y = kiln::sin(y);
  return kiln::outputs(y);
}

TEST(Schedule, TenThousandSinChainIsOneGroup) {
  const Graph g = traced("sin_chain", &g_sin_chain);
  const Schedule s = schedule_graph(g);
  ASSERT_EQ(s.groups.size(), 1u);
  EXPECT_EQ(s.groups[0].nodes.size(), 10000u);
  EXPECT_EQ(materialized_count(s), 1u);  // only the output
  EXPECT_FALSE(s.groups[0].has_reduction);
  expect_valid(g, s);
}

kiln::Outputs g_softmax() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 4096});
  return kiln::outputs(kiln::softmax(x));
}

TEST(Schedule, SoftmaxIsOneGroupWithThreeLoops) {
  const Graph g = traced("softmax", &g_softmax);
  const Schedule s = schedule_graph(g);
  ASSERT_EQ(s.groups.size(), 1u) << kiln::compiler::schedule_to_string(g, s);
  const auto& G = s.groups[0];
  EXPECT_TRUE(G.has_reduction);
  EXPECT_EQ(G.outer.size(), 1u);
  EXPECT_EQ(G.inner, kiln::ir::Dim::constant(4096));
  // max in loop 0, exp/sum in loop 1, div in loop 2.
  EXPECT_EQ(G.num_loops, 3);
  for (int32_t id : G.nodes) {
    const auto& n = g.node(id);
    if (n.op == Op::reduce_max) {
      EXPECT_EQ(s.phase[static_cast<size_t>(id)], 0);
    }
    if (n.op == Op::reduce_sum) {
      EXPECT_EQ(s.phase[static_cast<size_t>(id)], 1);
    }
    if (n.op == Op::div) {
      EXPECT_EQ(s.phase[static_cast<size_t>(id)], 2);
      EXPECT_EQ(s.role[static_cast<size_t>(id)], NodeRole::row_vector);
    }
    if (kiln::ir::is_reduction(n.op)) {
      EXPECT_EQ(s.role[static_cast<size_t>(id)], NodeRole::row_scalar);
    }
  }
  expect_valid(g, s);
}

kiln::Outputs g_layernorm() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::bf16, {n, 768});
  auto w = kiln::input("w", kiln::bf16, {768});
  auto b = kiln::input("b", kiln::bf16, {768});
  return kiln::outputs(kiln::layernorm(x, w, b));
}

TEST(Schedule, LayernormIsOneGroup) {
  const Graph g = traced("layernorm", &g_layernorm);
  const Schedule s = schedule_graph(g);
  ASSERT_EQ(s.groups.size(), 1u) << kiln::compiler::schedule_to_string(g, s);
  EXPECT_EQ(s.groups[0].num_loops, 3);
  EXPECT_EQ(materialized_count(s), 1u);
  // cast(w) and cast(b), of shape [768], are recomputed inline.
  int inline_only = 0;
  for (size_t id = 0; id < g.nodes.size(); ++id) {
    if (g.nodes[id].op == Op::cast && s.group_of[id] < 0) ++inline_only;
  }
  EXPECT_EQ(inline_only, 2);
  // rsqrt(var + eps) is a row-scalar after the second reduction.
  for (int32_t id : s.groups[0].nodes) {
    if (g.node(id).op == Op::rsqrt) {
      EXPECT_EQ(s.role[static_cast<size_t>(id)], NodeRole::row_scalar);
      EXPECT_EQ(s.phase[static_cast<size_t>(id)], 2);
    }
  }
  expect_valid(g, s);
}

kiln::Outputs g_rmsnorm() {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20, .hot = {1, 8}});
  auto x = kiln::input("x", kiln::bf16, {n, 4096});
  auto w = kiln::input("w", kiln::bf16, {4096});
  auto r = kiln::rsqrt(kiln::mean(kiln::square(kiln::cast(x, kiln::f32)), -1, true) + 1e-6);
  return kiln::outputs(kiln::cast(kiln::cast(x, kiln::f32) * r, kiln::bf16) * w);
}

kiln::Outputs g_rmsnorm_api() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f16, {n, 512});
  auto w = kiln::input("w", kiln::f16, {512});
  return kiln::outputs(kiln::rmsnorm(x, w));
}

TEST(Schedule, RmsnormIsOneGroup) {
  for (auto f : {&g_rmsnorm, &g_rmsnorm_api}) {
    const Graph g = traced("rmsnorm", f);
    const Schedule s = schedule_graph(g);
    ASSERT_EQ(s.groups.size(), 1u) << kiln::compiler::schedule_to_string(g, s);
    EXPECT_EQ(s.groups[0].num_loops, 2);
    EXPECT_EQ(materialized_count(s), 1u);
    expect_valid(g, s);
  }
}

kiln::Outputs g_gelu_affine() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 1024});
  auto a = kiln::input("a", kiln::f32, {1024});
  auto b = kiln::input("b", kiln::f32, {1024});
  return kiln::outputs(kiln::gelu(x * a + b));
}

TEST(Schedule, GeluOfAffineIsOneGroup) {
  const Graph g = traced("gelu_affine", &g_gelu_affine);
  const Schedule s = schedule_graph(g);
  ASSERT_EQ(s.groups.size(), 1u);
  EXPECT_EQ(s.groups[0].nodes.size(), 3u);
  EXPECT_EQ(s.groups[0].num_loops, 1);
  EXPECT_EQ(materialized_count(s), 1u);
  expect_valid(g, s);
}

// sum over rows of [n, m] gives [n]; a second reduction over [n] has another
// domain, and the broadcast back into [n, m] has the first domain again.
kiln::Outputs g_two_domains() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", kiln::f32, {n, m});
  auto rows = kiln::sum(x, -1);            // [n]
  auto total = kiln::sum(rows * 2.0, -1);  // []
  auto centered = x - kiln::sum(x, -1, true) / kiln::sum(kiln::exp(x), -1, true);
  return kiln::outputs(total, centered * total);
}

TEST(Schedule, TwoDomainsGiveSeveralGroupsInValidOrder) {
  const Graph g = traced("two_domains", &g_two_domains);
  const Schedule s = schedule_graph(g);
  EXPECT_GE(s.groups.size(), 2u) << kiln::compiler::schedule_to_string(g, s);
  EXPECT_LE(s.groups.size(), 3u) << kiln::compiler::schedule_to_string(g, s);
  expect_valid(g, s);
  // The scalar `total` is computed over domain O=[] C=n and read by a later group.
  int32_t total = g.outputs[0];
  const auto& G = s.groups[static_cast<size_t>(s.group_of[static_cast<size_t>(total)])];
  EXPECT_TRUE(G.outer.empty());
  EXPECT_TRUE(s.materialized[static_cast<size_t>(total)]);
  EXPECT_LT(s.group_of[static_cast<size_t>(total)], s.group_of[static_cast<size_t>(g.outputs[1])]);
}

kiln::Outputs g_identity() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 3});
  auto y = kiln::input("y", kiln::i32, {n});
  return kiln::outputs(x, kiln::exp(x), x, y, kiln::constant(2.5));
}

TEST(Schedule, OutputThatIsAnInputOrConstantGetsACopyGroup) {
  const Graph g = traced("identity", &g_identity);
  const Schedule s = schedule_graph(g);
  expect_valid(g, s);
  int copies = 0;
  for (const auto& G : s.groups) copies += G.copy_of >= 0 ? 1 : 0;
  EXPECT_EQ(copies, 3);  // x (returned twice: one copy group), y, the constant
  EXPECT_EQ(s.groups.size(), 4u) << kiln::compiler::schedule_to_string(g, s);
}

kiln::Outputs g_diamond() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 16});
  auto a = kiln::sin(x);
  auto b = kiln::cos(x);
  auto c = kiln::exp(a);
  auto d = a * b + c;
  return kiln::outputs(d);
}

TEST(Schedule, DiamondIsOneGroup) {
  const Graph g = traced("diamond", &g_diamond);
  const Schedule s = schedule_graph(g);
  ASSERT_EQ(s.groups.size(), 1u) << kiln::compiler::schedule_to_string(g, s);
  EXPECT_EQ(materialized_count(s), 1u);
  expect_valid(g, s);
}

// A reduction diamond: two reductions of the same row feed one output.
kiln::Outputs g_reduction_diamond() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 100});
  auto mx = kiln::max(x, -1, true);
  auto mn = kiln::min(x, -1, true);
  return kiln::outputs((x - mn) / (mx - mn), kiln::sum(x, -1));
}

TEST(Schedule, ReductionDiamondIsOneGroupTwoLoops) {
  const Graph g = traced("reduction_diamond", &g_reduction_diamond);
  const Schedule s = schedule_graph(g);
  ASSERT_EQ(s.groups.size(), 1u) << kiln::compiler::schedule_to_string(g, s);
  EXPECT_EQ(s.groups[0].num_loops, 2);
  EXPECT_EQ(materialized_count(s), 2u);
  expect_valid(g, s);
}

// A row-vector that a later loop needs, and a reduction whose result is not
// read in row shape: [n] (no keepdim) cannot broadcast against [n, m] by row.
kiln::Outputs g_no_keepdim_broadcast() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, n});
  auto s = kiln::sum(x, -1);  // [n], broadcasts along the *last* dim of [n, n]
  return kiln::outputs(x * s);
}

TEST(Schedule, NoKeepdimResultBroadcastAlongColumnsIsNotFused) {
  const Graph g = traced("no_keepdim", &g_no_keepdim_broadcast);
  const Schedule s = schedule_graph(g);
  EXPECT_EQ(s.groups.size(), 2u) << kiln::compiler::schedule_to_string(g, s);
  expect_valid(g, s);
}

kiln::Outputs g_middle_axis() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 6, 5});
  auto w = kiln::input("w", kiln::f32, {n});
  auto v = kiln::input("v", kiln::f32, {5});
  // exp(x) is computed inline by the reduction (same shape as x); x * v
  // broadcasts v, so the reduction reads it from a buffer.
  return kiln::outputs(kiln::sum(kiln::exp(x), 1, true) * 2.0, kiln::argmax(x, -1), kiln::sum(w),
                       kiln::max(x, -1), kiln::min(x * v, 0));
}

TEST(Schedule, OtherAxesArgmaxAndLongVectorsAreStandaloneReductions) {
  const Graph g = traced("middle_axis", &g_middle_axis);
  const Schedule s = schedule_graph(g);
  const std::string text = kiln::compiler::schedule_to_string(g, s);
  expect_valid(g, s);
  int standalone = 0;
  int inline_operands = 0;
  for (const auto& G : s.groups) {
    if (G.reduction_of < 0) continue;
    ++standalone;
    EXPECT_EQ(G.nodes, std::vector<int32_t>{G.reduction_of}) << text;
    const int32_t op = g.node(G.reduction_of).inputs[0];
    if (g.node(op).op == Op::input) continue;
    if (kiln::compiler::reduction_operand_inline(g, s.inlinable, G.reduction_of)) {
      ++inline_operands;
      EXPECT_EQ(g.node(op).op, Op::exp) << text;
      EXPECT_FALSE(s.materialized[static_cast<size_t>(op)]) << text;
      EXPECT_EQ(s.group_of[static_cast<size_t>(op)], -1) << text;
    } else {
      EXPECT_EQ(g.node(op).op, Op::mul) << text;
      EXPECT_TRUE(s.materialized[static_cast<size_t>(op)]) << text;
    }
  }
  EXPECT_EQ(inline_operands, 1) << text;
  // sum over axis 1, argmax, the sum of a whole vector of symbolic length, and
  // min over axis 0; max over the last axis stays a row group.
  EXPECT_EQ(standalone, 4) << text;
  EXPECT_NE(text.find("reduce_sum of [n, 6, 5] axes=[1]"), std::string::npos) << text;
  EXPECT_NE(text.find("argmax of [n, 6, 5] axes=[2]"), std::string::npos) << text;
  EXPECT_NE(text.find("reduce_max/s0"), std::string::npos) << text;
}

// ---------------------------------------------------------------------------
// Views and index groups.

size_t temp_buffers(const Graph& g) {
  const auto lowered =
      kiln::compiler::lower_cpu(g, kiln::ir::SymbolValues(g.symbols.size(), -1), {"t"});
  return static_cast<size_t>(
      std::count_if(lowered.buffers.begin(), lowered.buffers.end(),
                    [](const auto& b) { return b.role == kiln::compiler::BufferRole::temp; }));
}

size_t count_groups(const Schedule& s, bool (*pred)(const kiln::compiler::FusedGroup&)) {
  return static_cast<size_t>(std::count_if(s.groups.begin(), s.groups.end(), pred));
}

kiln::Outputs g_reshape_of_input() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 4, 8});
  auto w = kiln::input("w", kiln::f32, {32});
  // Flattened, scaled, normalized per row: one group reading x's buffer.
  auto y = kiln::reshape(x, {n, 32}) * w;
  return kiln::outputs(kiln::softmax(y));
}

TEST(Schedule, AReshapeOfAnInputReadsItsBufferInOneGroup) {
  const Graph g = traced("reshape_of_input", &g_reshape_of_input);
  const Schedule s = schedule_graph(g);
  const std::string text = kiln::compiler::schedule_to_string(g, s);
  ASSERT_EQ(s.groups.size(), 1u) << text;
  EXPECT_EQ(s.groups[0].num_loops, 3) << text;
  EXPECT_EQ(materialized_count(s), 1u) << text;
  EXPECT_EQ(temp_buffers(g), 0u);
  expect_valid(g, s);
}

kiln::Outputs g_reshape_of_computed() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 32});
  auto e = kiln::exp(kiln::sum(x, -1, true) - x);  // needs a reduction: not inlinable
  auto v = kiln::reshape(e, {n, 4, 8});
  return kiln::outputs(kiln::sum(v, -1) * 2.0, v + 1.0);
}

TEST(Schedule, AReshapeOfAComputedNodeAliasesItsOneBuffer) {
  const Graph g = traced("reshape_of_computed", &g_reshape_of_computed);
  const Schedule s = schedule_graph(g);
  const std::string text = kiln::compiler::schedule_to_string(g, s);
  expect_valid(g, s);
  // e's group, then the readers of the view ([n, 4] rows of 8): two groups,
  // one temp (e itself), no copy.
  EXPECT_EQ(s.groups.size(), 2u) << text;
  EXPECT_EQ(count_groups(s, [](const auto& G) { return G.copy_of >= 0; }), 0u) << text;
  EXPECT_EQ(temp_buffers(g), 1u) << text;
  for (size_t id = 0; id < g.nodes.size(); ++id) {
    if (g.nodes[id].op != Op::reshape) continue;
    EXPECT_EQ(s.group_of[id], -1);
    EXPECT_FALSE(s.materialized[id]);
    EXPECT_TRUE(s.materialized[static_cast<size_t>(g.nodes[id].inputs[0])]);
  }
}

kiln::Outputs g_reshape_outputs() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 6});
  auto y = x * 2.0;
  return kiln::outputs(kiln::reshape(x, {n, 2, 3}), kiln::unsqueeze(y, 1), y);
}

TEST(Schedule, AReshapeThatIsAnOutputGetsACopyGroup) {
  const Graph g = traced("reshape_outputs", &g_reshape_outputs);
  const Schedule s = schedule_graph(g);
  const std::string text = kiln::compiler::schedule_to_string(g, s);
  expect_valid(g, s);
  EXPECT_EQ(count_groups(s, [](const auto& G) { return G.copy_of >= 0; }), 2u) << text;
  EXPECT_EQ(s.groups.size(), 3u) << text;
  // y is an output already: the copy reads its output buffer, no temp.
  EXPECT_EQ(temp_buffers(g), 0u);
}

kiln::Outputs g_expands() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 64});
  auto w = kiln::input("w", kiln::f32, {64});
  auto m = kiln::max(x, -1, true);
  // Broadcasts of an input and of a row's max: identities the row group
  // computes where they are read.
  auto y = x * kiln::expand(w, {n, 64}) - kiln::broadcast_to(m, {n, 64});
  return kiln::outputs(y, kiln::sum(kiln::expand(kiln::unsqueeze(w, 0), {n, 64}), -1));
}

TEST(Schedule, ExpandsFuseWithoutBuffers) {
  const Graph g = traced("expands", &g_expands);
  const Schedule s = schedule_graph(g);
  const std::string text = kiln::compiler::schedule_to_string(g, s);
  expect_valid(g, s);
  ASSERT_EQ(s.groups.size(), 1u) << text;
  EXPECT_EQ(materialized_count(s), 2u) << text;  // the two outputs
  EXPECT_EQ(temp_buffers(g), 0u);
  for (size_t id = 0; id < g.nodes.size(); ++id) {
    if (g.nodes[id].op == Op::expand) {
      EXPECT_FALSE(s.materialized[id]) << id;
    }
  }
}

kiln::Outputs g_index_groups() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 4, 8});
  auto ids = kiln::input("ids", kiln::i32, {3});
  auto t = kiln::transpose(kiln::exp(x), 1, 2);            // exp computed inline: same shape as x
  auto sl = kiln::slice(kiln::sum(x, -1, true), 1, 1, 3);  // a reduction's buffer
  auto c = kiln::concat({x, x * 2.0}, 1);
  auto gth = kiln::gather(x, ids, 2);
  auto mask = kiln::iota({n, 1}, 0) >= kiln::iota({1, n}, 1);
  return kiln::outputs(t * 3.0, sl, c, gth, mask);
}

TEST(Schedule, PermuteSliceConcatGatherIotaAreIndexGroups) {
  const Graph g = traced("index_groups", &g_index_groups);
  const Schedule s = schedule_graph(g);
  const std::string text = kiln::compiler::schedule_to_string(g, s);
  expect_valid(g, s);
  EXPECT_EQ(count_groups(s, [](const auto& G) { return G.index_of >= 0; }), 6u) << text;
  for (size_t id = 0; id < g.nodes.size(); ++id) {
    const Op op = g.nodes[id].op;
    if (kiln::compiler::is_index_op(op)) {
      EXPECT_EQ(s.groups.at(static_cast<size_t>(s.group_of[id])).index_of,
                static_cast<int32_t>(id));
      EXPECT_TRUE(s.materialized[id]);
    }
    // The operands an index kernel computes inline (exp(x), x * 2) have no buffer.
    if (op == Op::exp || op == Op::mul) {
      const bool read_by_index = std::any_of(g.nodes.begin(), g.nodes.end(), [&](const auto& r) {
        return kiln::compiler::is_index_op(r.op) &&
               std::find(r.inputs.begin(), r.inputs.end(), static_cast<int32_t>(id)) !=
                   r.inputs.end();
      });
      if (read_by_index) {
        EXPECT_TRUE(kiln::compiler::index_operand_inline(g, s.inlinable, static_cast<int32_t>(id)));
        EXPECT_FALSE(s.materialized[id]) << id << "\n" << text;
      }
    }
  }
  EXPECT_NE(text.find("index"), std::string::npos);
  EXPECT_NE(text.find(":permute [n, 8, 4] <- "), std::string::npos) << text;
}

TEST(Schedule, LastTwoAxesTransposeIsRecognized) {
  const Graph g = traced("transposes", [] {
    auto x = kiln::input("x", kiln::f32, {2, 3, 4, 5});
    auto m = kiln::input("m", kiln::f32, {4, 5});
    return kiln::outputs(kiln::transpose(x, -1, -2), kiln::transpose(m, 0, 1),
                         kiln::transpose(x, 0, 1), kiln::permute(x, {1, 0, 3, 2}));
  });
  auto node = [&](size_t k) { return g.node(g.outputs[k]); };
  EXPECT_TRUE(kiln::compiler::is_last_two_axes_transpose(node(0)));
  EXPECT_TRUE(kiln::compiler::is_last_two_axes_transpose(node(1)));
  EXPECT_FALSE(kiln::compiler::is_last_two_axes_transpose(node(2)));
  EXPECT_FALSE(kiln::compiler::is_last_two_axes_transpose(node(3)));
  EXPECT_FALSE(kiln::compiler::is_last_two_axes_transpose(g.node(g.inputs[0])));
}

kiln::Outputs g_dead() {
  auto x = kiln::input("x", kiln::f32, {8});
  auto unused = kiln::exp(x);
  (void)unused;
  return kiln::outputs(kiln::sin(x));
}

TEST(Schedule, DeadNodesAreNotScheduled) {
  const Graph g = kiln::trace("dead", &g_dead);  // not canonicalized: the dead exp stays
  const Schedule s = schedule_graph(g);
  ASSERT_EQ(s.groups.size(), 1u);
  EXPECT_EQ(s.groups[0].nodes.size(), 1u);
}

// The ops of every matmul group, sorted: each starts with its matmul node
// and writes its last node.
std::vector<std::vector<Op>> matmul_groups(const Graph& g, const Schedule& s) {
  std::vector<std::vector<Op>> groups;
  for (const auto& G : s.groups) {
    if (G.matmul_of < 0) continue;
    std::vector<Op> ops;
    for (int32_t id : G.nodes) ops.push_back(g.node(id).op);
    groups.push_back(ops);
    EXPECT_EQ(G.nodes.front(), G.matmul_of);
    EXPECT_TRUE(s.materialized[static_cast<size_t>(G.nodes.back())]);
  }
  std::sort(groups.begin(), groups.end());
  return groups;
}

std::vector<std::vector<Op>> sorted(std::vector<std::vector<Op>> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// A matmul is a group of its own; a scale, bias add and relu after it join
// it as its epilogue, in that order only; anything else reads its buffer.
TEST(Schedule, MatmulGroupTakesItsEpilogueInOrder) {
  const Graph g = traced("mm", [] {
    auto n = kiln::sym("n");
    auto x = kiln::input("x", kiln::f32, {n, 64});
    auto w = kiln::input("w", kiln::f32, {64, 32});
    auto b = kiln::input("b", kiln::f32, {32});
    auto h = kiln::relu(kiln::matmul(x, w) * 0.125 + b);  // all three in the epilogue
    auto r = kiln::matmul(x, w) + b;
    auto late_scale = kiln::relu(r) * 2.0;  // relu joins; a scale after it does not
    auto shared = kiln::matmul(x, w);       // read twice: no epilogue
    return kiln::outputs(kiln::tanh(h), late_scale, shared + b, kiln::exp(shared));
  });
  const Schedule s = schedule_graph(g);
  expect_valid(g, s);
  EXPECT_EQ(matmul_groups(g, s), sorted({{Op::matmul},
                                         {Op::matmul, Op::add, Op::relu},
                                         {Op::matmul, Op::mul, Op::add, Op::relu}}))
      << kiln::compiler::schedule_to_string(g, s);
}

// A 16-bit product is rounded before its bias is added: the add stays out of
// the epilogue (a kernel reads the rounded product), and so does the relu
// after it. A scale and a relu directly on the product still join.
TEST(Schedule, SixteenBitBiasStaysOutOfTheEpilogue) {
  const Graph g = traced("mm16", [] {
    auto x = kiln::input("x", kiln::bf16, {8, 64});
    auto w = kiln::input("w", kiln::bf16, {64, 32});
    auto b = kiln::input("b", kiln::bf16, {32});
    return kiln::outputs(kiln::relu(kiln::matmul(x, w) + b), kiln::relu(kiln::matmul(x, w) * 0.5));
  });
  const Schedule s = schedule_graph(g);
  expect_valid(g, s);
  EXPECT_EQ(matmul_groups(g, s), sorted({{Op::matmul}, {Op::matmul, Op::mul, Op::relu}}))
      << kiln::compiler::schedule_to_string(g, s);
}

}  // namespace
