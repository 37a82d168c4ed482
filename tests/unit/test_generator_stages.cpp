// The generator's stages one at a time (kiln/compiler/generator_stages.h):
// each on inputs made here, its output checked against what the stage
// before it planned.
#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/generator.h"
#include "kiln/compiler/generator_stages.h"
#include "kiln/graph.h"
#include "test_support/scratch_files.h"

namespace {

namespace fs = std::filesystem;
using kiln::compiler::GeneratorInputs;
using kiln::compiler::GeneratorOptions;
using kiln::compiler::LoweredSpecialization;
using kiln::compiler::LoweredTarget;
using kiln::compiler::SpecializationPlan;

// A hot value, so a static specialization before the general one.
kiln::Outputs norms() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096, .hot = {4}});
  return kiln::outputs(kiln::softmax(kiln::input("x", kiln::f32, {n, 37})));
}

kiln::Outputs scale() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096});
  auto x = kiln::input("x", kiln::f32, {n, 64});
  return kiln::outputs(x * 2.0f);
}

GeneratorOptions options(std::vector<std::string> targets) {
  GeneratorOptions o;
  o.name = "stages_test";
  o.targets = std::move(targets);
  return o;
}

std::vector<kiln::ir::Graph> traced() {
  return {kiln::trace("scale", &scale), kiln::trace("norms", &norms)};
}

SpecializationPlan plan_of(const GeneratorInputs& inputs, const GeneratorOptions& o) {
  return kiln::compiler::plan_specializations(
      inputs, kiln::compiler::choose_graph_targets(inputs, o), {}, o.general);
}

// What a dry run lowers: every graph on each of its planned targets.
std::vector<std::vector<LoweredTarget>> lower_all(const GeneratorInputs& inputs,
                                                  const SpecializationPlan& plan,
                                                  const kiln::compiler::Toolchain& toolchain) {
  std::vector<std::vector<LoweredTarget>> lowered(inputs.graphs.size());
  for (size_t gi = 0; gi < inputs.graphs.size(); ++gi) {
    for (const size_t t : plan.graphs[gi].targets) {
      lowered[gi].push_back(kiln::compiler::lower_for_target(
          inputs.graphs[gi], plan.graphs[gi].specializations, plan.targets[t], t, toolchain, ""));
    }
  }
  return lowered;
}

const kiln::compiler::Toolchain kTestToolchain{{}, "test toolchain"};

TEST(GeneratorStages, PrepareInputsParsesTargetsAndSortsCanonicalGraphs) {
  const GeneratorInputs inputs =
      kiln::compiler::prepare_inputs(options({"cpu:x86-64", "cuda:sm_90"}), traced());
  ASSERT_EQ(inputs.targets.size(), 2u);
  EXPECT_EQ(inputs.targets[1].arch, "sm_90");
  EXPECT_TRUE(inputs.targets[1].cuda);
  ASSERT_EQ(inputs.graphs.size(), 2u);
  EXPECT_EQ(inputs.graphs[0].name, "norms");
  EXPECT_EQ(inputs.graphs[1].name, "scale");
  EXPECT_THROW(kiln::compiler::prepare_inputs(options({"cpu:x86-64", "cpu:x86-64"}), traced()),
               std::invalid_argument);
  EXPECT_THROW(
      kiln::compiler::prepare_inputs(options({"cpu:x86-64"}),
                                     {kiln::trace("scale", &scale), kiln::trace("scale", &scale)}),
      std::invalid_argument);
}

TEST(GeneratorStages, ChooseGraphTargetsLeavesAGraphOffATargetAboveItsBudget) {
  auto o = options({"cpu:x86-64", "cuda:sm_90"});
  o.cuda_op_budget = 2;  // scale has two ops (a constant and a mul), norms more
  const GeneratorInputs inputs = kiln::compiler::prepare_inputs(o, traced());
  const auto chosen = kiln::compiler::choose_graph_targets(inputs, o);
  EXPECT_EQ(chosen.targets_of_graph,
            (std::vector<std::vector<size_t>>{{0}, {0, 1}}));  // norms, scale
  ASSERT_EQ(chosen.warnings.size(), 1u);
  EXPECT_NE(chosen.warnings[0].find("graph 'norms'"), std::string::npos) << chosen.warnings[0];

  o.graph_targets["norms"] = {"cuda:sm_90"};
  const auto named = kiln::compiler::choose_graph_targets(inputs, o);
  EXPECT_EQ(named.targets_of_graph, (std::vector<std::vector<size_t>>{{1}, {0, 1}}));
  ASSERT_EQ(named.warnings.size(), 1u);
  EXPECT_NE(named.warnings[0].find("built for them anyway"), std::string::npos);
}

TEST(GeneratorStages, PlanGivesEachTargetItsBuildAndEachGraphItsSpecializations) {
  const auto o = options({"cpu:x86-64-v3", "cuda:sm_80", "cuda:sm_90"});
  const GeneratorInputs inputs = kiln::compiler::prepare_inputs(o, traced());
  kiln::compiler::ProfiledShapes profiled;
  profiled.by_graph["norms"].push_back({{9}, 3, "test.kprof:2"});
  profiled.warnings.push_back("a profile warning");
  const SpecializationPlan plan = kiln::compiler::plan_specializations(
      inputs, kiln::compiler::choose_graph_targets(inputs, o), profiled, true);

  ASSERT_EQ(plan.targets.size(), 3u);
  EXPECT_EQ(plan.targets[0].build_name, "cpu-x86-64-v3");
  EXPECT_EQ(plan.targets[0].compile_flags, kiln::compiler::cpu_compile_flags("x86-64-v3"));
  EXPECT_EQ(plan.targets[1].build_name, "cuda-sm_80");
  EXPECT_EQ(plan.targets[1].compile_flags, kiln::compiler::cuda_compile_flags("sm_80"));
  // Only the newest arch ships PTX.
  EXPECT_FALSE(plan.targets[0].ptx);
  EXPECT_FALSE(plan.targets[1].ptx);
  EXPECT_TRUE(plan.targets[2].ptx);

  ASSERT_EQ(plan.graphs.size(), 2u);
  const kiln::compiler::PlannedGraph& planned_norms = plan.graphs[0];
  EXPECT_EQ(planned_norms.ops, kiln::compiler::op_count(inputs.graphs[0]));
  EXPECT_EQ(planned_norms.targets, (std::vector<size_t>{0, 1, 2}));
  // The hot value, the profiled shape, then the general specialization.
  EXPECT_EQ(planned_norms.specializations, (std::vector<kiln::ir::SymbolValues>{{4}, {9}, {-1}}));
  EXPECT_EQ(plan.graphs[1].specializations, (std::vector<kiln::ir::SymbolValues>{{-1}}));
  EXPECT_EQ(plan.warnings, (std::vector<std::string>{"a profile warning"}));
}

TEST(GeneratorStages, LowerForCpuKeysEachPlannedSpecialization) {
  const auto o = options({"cpu:x86-64"});
  const GeneratorInputs inputs = kiln::compiler::prepare_inputs(o, traced());
  const SpecializationPlan plan = plan_of(inputs, o);
  const kiln::ir::Graph& g = inputs.graphs[0];  // norms
  const LoweredTarget lowered = kiln::compiler::lower_for_target(
      g, plan.graphs[0].specializations, plan.targets[0], 0, kTestToolchain, "");
  EXPECT_EQ(lowered.target, 0u);
  ASSERT_EQ(lowered.specializations.size(), plan.graphs[0].specializations.size());
  std::set<std::string> prefixes;
  for (size_t i = 0; i < lowered.specializations.size(); ++i) {
    const LoweredSpecialization& s = lowered.specializations[i];
    const kiln::ir::SymbolValues& planned = plan.graphs[0].specializations[i];
    EXPECT_EQ(s.values, planned);
    EXPECT_EQ(s.name, kiln::compiler::specialization_name(g, planned));
    EXPECT_EQ(s.key, kiln::compiler::combine_key(s.components));
    // The key names this graph, target and toolchain with these static values.
    const kiln::compiler::KeyComponents expected =
        kiln::compiler::key_components(g, {"cpu:x86-64", "", kTestToolchain.identity, "", planned});
    EXPECT_EQ(s.components.structure, expected.structure);
    EXPECT_EQ(s.components.shapes, expected.shapes);
    EXPECT_EQ(s.components.target, expected.target);
    EXPECT_EQ(s.components.compiler, expected.compiler);
    EXPECT_FALSE(s.guards.empty());
    const auto& code = std::get<kiln::compiler::CpuLoweredGraph>(s.code);
    ASSERT_FALSE(code.kernels.empty());
    // Kernels are <prefix>_k<group>: one prefix per specialization.
    const std::string& first = code.kernels[0].entry;
    const std::string prefix = first.substr(0, first.rfind("_k"));
    EXPECT_EQ(prefix.rfind("kiln_norms_", 0), 0u) << first;
    for (const auto& k : code.kernels) EXPECT_EQ(k.entry.rfind(prefix + "_k", 0), 0u) << k.entry;
    prefixes.insert(prefix);
  }
  EXPECT_EQ(prefixes.size(), lowered.specializations.size());

  // The tag is in every key; lowering again gives the same keys.
  const LoweredTarget tagged = kiln::compiler::lower_for_target(
      g, plan.graphs[0].specializations, plan.targets[0], 0, kTestToolchain, "canary");
  const LoweredTarget again = kiln::compiler::lower_for_target(
      g, plan.graphs[0].specializations, plan.targets[0], 0, kTestToolchain, "");
  for (size_t i = 0; i < lowered.specializations.size(); ++i) {
    EXPECT_NE(tagged.specializations[i].key, lowered.specializations[i].key);
    EXPECT_EQ(again.specializations[i].key, lowered.specializations[i].key);
  }
}

TEST(GeneratorStages, LowerForCudaGivesTheGeneralSpecializationsVariants) {
  const auto o = options({"cuda:sm_90"});
  const GeneratorInputs inputs = kiln::compiler::prepare_inputs(o, traced());
  const SpecializationPlan plan = plan_of(inputs, o);
  const LoweredTarget lowered = kiln::compiler::lower_for_target(
      inputs.graphs[1], plan.graphs[1].specializations, plan.targets[0], 0, kTestToolchain, "");
  // scale: n up to 4096 rows of 64, int-indexed; rows of 64 f32 move in
  // vectors, so an unaligned variant too.
  std::vector<std::string> names;
  for (const LoweredSpecialization& s : lowered.specializations) {
    names.push_back(s.name);
    ASSERT_FALSE(s.guards.empty());
    EXPECT_EQ(s.guards.back()->kind, kiln::fb::GuardKind::CudaArch) << s.name;
    const bool index_width = std::any_of(s.guards.begin(), s.guards.end(), [](const auto& guard) {
      return guard->kind == kiln::fb::GuardKind::IndexWidth;
    });
    EXPECT_EQ(index_width, s.name.find("index32") != std::string::npos) << s.name;
    EXPECT_TRUE(std::holds_alternative<kiln::compiler::CudaLoweredGraph>(s.code));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"general,index32", "general,index32,unaligned"}));
  EXPECT_NE(lowered.specializations[0].key, lowered.specializations[1].key);
}

TEST(GeneratorStages, AssembleNumbersKernelsAndBlobsInOrder) {
  const auto o = options({"cpu:x86-64", "cuda:sm_90"});
  const GeneratorInputs inputs = kiln::compiler::prepare_inputs(o, traced());
  const SpecializationPlan plan = plan_of(inputs, o);
  auto lowered = lower_all(inputs, plan, kTestToolchain);
  std::string keys;
  size_t specializations = 0, cpu_kernels = 0, cuda_kernels = 0;
  for (const auto& graph : lowered) {
    for (const LoweredTarget& target : graph) {
      for (const LoweredSpecialization& s : target.specializations) {
        keys += s.key.hex();
        ++specializations;
        if (const auto* cpu = std::get_if<kiln::compiler::CpuLoweredGraph>(&s.code)) {
          cpu_kernels += cpu->kernels.size();
        } else {
          cuda_kernels += std::get<kiln::compiler::CudaLoweredGraph>(s.code).kernels.size();
        }
      }
    }
  }
  const kiln::compiler::PackageDraft draft =
      kiln::compiler::assemble_package(inputs.graphs, plan, std::move(lowered));

  EXPECT_EQ(draft.specializations, specializations);
  EXPECT_EQ(draft.source_hash, kiln::compiler::hash_string(keys));
  ASSERT_EQ(draft.manifest.targets.size(), 2u);
  ASSERT_EQ(draft.manifest.graphs.size(), 2u);
  EXPECT_EQ(draft.manifest.graphs[0]->name, "norms");
  ASSERT_EQ(draft.manifest.kernels.size(), cpu_kernels + cuda_kernels);
  // The CPU target's shared object, then a cubin and a PTX per CUDA kernel.
  ASSERT_EQ(draft.blobs.size(), 1 + 2 * cuda_kernels);
  EXPECT_EQ(draft.blobs[0].kind, kiln::fb::BlobKind::CpuSharedObject);
  ASSERT_EQ(draft.build.libraries.size(), 1u);
  ASSERT_EQ(draft.build.cuda.size(), 1u);
  EXPECT_EQ(draft.build.libraries[0].sources.size(), 1 + cpu_kernels);
  EXPECT_EQ(draft.build.libraries[0].sources[0].name, "kiln_cpu_abi.cpp");
  EXPECT_EQ(draft.build.cuda[0].sources.size(), cuda_kernels);
  for (const auto& kernel : draft.manifest.kernels) {
    if (kernel->target == 0) {
      EXPECT_EQ(kernel->blob, 0u);
      continue;
    }
    const kiln::compiler::BlobSource& cubin = draft.blobs.at(kernel->blob);
    const kiln::compiler::BlobSource& ptx = draft.blobs.at(static_cast<size_t>(kernel->ptx_blob));
    EXPECT_EQ(cubin.kind, kiln::fb::BlobKind::Cubin);
    EXPECT_EQ(ptx.kind, kiln::fb::BlobKind::Ptx);
    EXPECT_EQ(cubin.source, ptx.source);
    EXPECT_EQ(draft.build.cuda[0].sources.at(cubin.source).name, kernel->entry + ".cu");
  }
  // Every launch of a specialization runs a kernel of its own target.
  for (const auto& graph : draft.manifest.graphs) {
    for (const auto& spec : graph->specializations) {
      for (const auto& launch : spec->plan->launches) {
        if (launch->library_call) continue;
        ASSERT_LT(launch->kernel, draft.manifest.kernels.size());
        EXPECT_EQ(draft.manifest.kernels[launch->kernel]->target, spec->target);
      }
    }
  }
}

// The stages by hand write the package run_generator writes.
TEST(GeneratorStages, BuildAndPackGiveRunGeneratorsPackage) {
  const fs::path dir = kiln_test::fresh_dir("generator_stages/by_hand");
  auto o = options({"cpu:x86-64"});
  o.cpp_namespace = "stages_test";
  o.cxx = KILN_TEST_CLANGXX;
  o.ninja = KILN_TEST_NINJA;
  o.out_dir = dir / "out";
  o.work_dir = dir / "work";
  const std::string want = kiln_test::slurp(kiln::compiler::run_generator(o, traced()).package);
  ASSERT_FALSE(want.empty());

  const GeneratorInputs inputs = kiln::compiler::prepare_inputs(o, traced());
  const SpecializationPlan plan = plan_of(inputs, o);
  const kiln::compiler::Toolchain toolchain = kiln::compiler::identify_toolchain(o, inputs.targets);
  ASSERT_EQ(toolchain.compilers.size(), 1u);
  kiln::compiler::PackageDraft draft =
      kiln::compiler::assemble_package(inputs.graphs, plan, lower_all(inputs, plan, toolchain));
  draft.build.work_dir = dir / "work_by_hand";
  draft.build.cxx = o.cxx;
  draft.build.ninja = o.ninja;
  std::vector<kiln::compiler::BlobInput> blobs =
      kiln::compiler::build_with_ninja(draft.build, draft.blobs);
  ASSERT_EQ(blobs.size(), 1u);
  EXPECT_EQ(blobs[0].kind, kiln::fb::BlobKind::CpuSharedObject);
  const std::vector<uint8_t> bytes =
      kiln::compiler::pack(std::move(draft), std::move(blobs), toolchain);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), want);
}

}  // namespace
