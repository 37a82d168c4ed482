// Per-graph targets in the generator: GRAPH_TARGETS (--graph-targets) and
// kiln::graph_targets() narrow a graph's targets, the op budgets leave a
// large graph off a target kind with a warning, and bad use is a clear error.
// Dry runs: no compiler runs, nothing is written.
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/generator.h"
#include "kiln/graph.h"

namespace {

namespace fs = std::filesystem;
using kiln::compiler::GeneratorOptions;
using kiln::compiler::run_generator;

kiln::Outputs small() {
  auto x = kiln::input("x", kiln::f32, {8});
  return kiln::outputs(x * 2.0f);
}

// 5 ops: two constants, mul, add, sin.
kiln::Outputs wide() {
  auto x = kiln::input("x", kiln::f32, {8});
  return kiln::outputs(kiln::sin(x * 2.0f + 1.0f));
}

kiln::Outputs declared_v3() {
  kiln::graph_targets({"cpu:x86-64-v3", "cuda:sm_90"});
  return small();
}

GeneratorOptions dry_run(const std::vector<std::string>& targets) {
  GeneratorOptions o;
  o.name = "graph_targets_test";
  o.cpp_namespace = "graph_targets_test";
  o.targets = targets;
  o.out_dir = fs::path(KILN_TEST_BINARY_DIR) / "graph_targets_dry_run_out";
  o.work_dir = o.out_dir / "work";
  o.dry_run = true;
  return o;
}

std::vector<std::string> targets_of(const kiln::compiler::GeneratorSummary& s,
                                    const std::string& graph) {
  return s.graph_targets.at(graph).targets;
}

std::string error_of(const GeneratorOptions& o, const std::vector<kiln::ir::Graph>& graphs) {
  try {
    run_generator(o, graphs);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(GraphTargets, AGraphAboveTheCudaBudgetIsLeftOffCudaWithAWarning) {
  GeneratorOptions o = dry_run({"cpu:x86-64", "cuda:sm_90"});
  o.cuda_op_budget = 3;
  const auto s = run_generator(o, {kiln::trace("small", &small), kiln::trace("wide", &wide)});
  EXPECT_FALSE(fs::exists(o.out_dir)) << "a dry run writes nothing";
  EXPECT_EQ(s.graph_targets.at("wide").ops, 5u);
  EXPECT_EQ(targets_of(s, "wide"), std::vector<std::string>{"cpu:x86-64"});
  EXPECT_EQ(targets_of(s, "small"), (std::vector<std::string>{"cpu:x86-64", "cuda:sm_90"}));
  ASSERT_EQ(s.warnings.size(), 1u);
  EXPECT_NE(s.warnings[0].find("graph 'wide' has 5 ops, above the op budget of cuda:sm_90 "
                               "(cuda:sm_90: 3)"),
            std::string::npos)
      << s.warnings[0];
  EXPECT_NE(s.warnings[0].find("not built for cuda:sm_90, so a call there misses"),
            std::string::npos)
      << s.warnings[0];
  EXPECT_NE(s.warnings[0].find("GRAPH_TARGETS wide cpu:x86-64 to silence this"), std::string::npos)
      << s.warnings[0];
}

TEST(GraphTargets, ATargetGraphTargetsNamesIsBuiltAboveItsBudget) {
  GeneratorOptions o = dry_run({"cpu:x86-64", "cuda:sm_90"});
  o.cuda_op_budget = 3;
  o.graph_targets["wide"] = {"cuda:sm_90"};
  const auto s = run_generator(o, {kiln::trace("wide", &wide)});
  EXPECT_EQ(targets_of(s, "wide"), std::vector<std::string>{"cuda:sm_90"});
  ASSERT_EQ(s.warnings.size(), 1u);
  EXPECT_NE(s.warnings[0].find("above the op budget of cuda:sm_90; built for them anyway"),
            std::string::npos)
      << s.warnings[0];
}

TEST(GraphTargets, AGraphAboveEveryBudgetIsAnError) {
  GeneratorOptions o = dry_run({"cpu:x86-64", "cpu:x86-64-v3"});
  o.cpu_op_budget = 4;
  EXPECT_NE(error_of(o, {kiln::trace("wide", &wide)})
                .find("graph 'wide' has 5 ops, above the op budget of each of its targets "
                      "(cpu:x86-64: 4, cpu:x86-64-v3: 4)"),
            std::string::npos);
  o.cpu_op_budget = 0;  // no budget
  EXPECT_EQ(targets_of(run_generator(o, {kiln::trace("wide", &wide)}), "wide").size(), 2u);
}

TEST(GraphTargets, GraphTargetsAndTheDeclarationGiveWhatBothAllow) {
  GeneratorOptions o = dry_run({"cpu:x86-64", "cpu:x86-64-v3"});
  o.graph_targets["small"] = {"cpu:x86-64"};
  const auto s =
      run_generator(o, {kiln::trace("small", &small), kiln::trace("declared", &declared_v3)});
  EXPECT_EQ(targets_of(s, "small"), std::vector<std::string>{"cpu:x86-64"});
  // The declaration's cuda:sm_90 is not a target of this package: ignored.
  EXPECT_EQ(targets_of(s, "declared"), std::vector<std::string>{"cpu:x86-64-v3"});
  EXPECT_TRUE(s.warnings.empty());

  o.graph_targets = {{"declared", {"cpu:x86-64"}}};
  EXPECT_EQ(error_of(o, {kiln::trace("declared", &declared_v3)}),
            "kiln: graph 'declared' is left with no target: its declaration allows "
            "cpu:x86-64-v3, cuda:sm_90 (kiln::graph_targets), the package builds cpu:x86-64 "
            "for it (GRAPH_TARGETS)");
}

TEST(GraphTargets, BadGraphTargetsAreErrors) {
  GeneratorOptions o = dry_run({"cpu:x86-64", "cpu:x86-64-v3"});
  o.graph_targets["nope"] = {"cpu:x86-64"};
  EXPECT_EQ(error_of(o, {kiln::trace("small", &small), kiln::trace("wide", &wide)}),
            "kiln: GRAPH_TARGETS (--graph-targets) names graph 'nope', which no KILN_GRAPH of "
            "this package declares (its graphs: small, wide)");
  o.graph_targets = {{"small", {"cuda:sm_90"}}};
  EXPECT_EQ(error_of(o, {kiln::trace("small", &small)}),
            "kiln: GRAPH_TARGETS (--graph-targets) for graph 'small' lists 'cuda:sm_90', which "
            "is not one of the package's targets (cpu:x86-64, cpu:x86-64-v3)");
  o.graph_targets = {{"small", {"cpu:x86-64", "cpu:x86-64"}}};
  EXPECT_NE(error_of(o, {kiln::trace("small", &small)}).find("lists 'cpu:x86-64' twice"),
            std::string::npos);
  o.graph_targets = {{"small", {}}};
  EXPECT_NE(error_of(o, {kiln::trace("small", &small)}).find("lists no target"), std::string::npos);
}

TEST(GraphTargets, DeclarationErrorsAreTraceErrors) {
  auto message = [](kiln::GraphFunction f) -> std::string {
    try {
      kiln::trace("g", f);
    } catch (const kiln::TraceError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(message([] {
              kiln::graph_targets({"cpu:x86-64"});
              kiln::graph_targets({"cpu:x86-64-v3"});
              return small();
            }),
            "kiln: graph 'g': graph_targets: called twice; list every target in one call");
  EXPECT_EQ(message([] {
              kiln::graph_targets({});
              return small();
            }),
            "kiln: graph 'g': graph_targets: expected at least one target, e.g. "
            "{\"cpu:x86-64\"}");
  EXPECT_NE(
      message([] {
        kiln::graph_targets({"gpu:sm_90"});
        return small();
      }).find("graph_targets: kiln: target 'gpu:sm_90': expected cpu:<level> or cuda:sm_<NN>"),
      std::string::npos);
  EXPECT_EQ(message([] {
              kiln::graph_targets({"cuda:sm_90", "cuda:sm_90"});
              return small();
            }),
            "kiln: graph 'g': graph_targets: target 'cuda:sm_90' is listed twice");
  EXPECT_THROW(kiln::graph_targets({"cpu:x86-64"}), kiln::TraceError);  // outside a body
}

}  // namespace
