// kiln merge: deltas folded into a base package. Generated packages (base
// with hot n=8, delta with hot n=64) check that the merged package runs the
// delta's shapes precompiled and matches the interpreter; hand-built ones
// (test_support/cpu_test_package.h) check ordering, targets and conflicts.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/generator.h"
#include "kiln/compiler/hash.h"
#include "kiln/compiler/interpreter.h"
#include "kiln/compiler/manifest_builder.h"
#include "kiln/compiler/package_merge.h"
#include "kiln/graph.h"
#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "kiln/support/process.h"
#include "test_support/blob_digests.h"
#include "test_support/cpu_test_package.h"
#include "test_support/cuda_test_package.h"
#include "test_support/gemm_test_package.h"
#include "test_support/random_call.h"
#include "test_support/scratch_files.h"

namespace {

namespace fs = std::filesystem;
namespace fb = kiln::fb;
using kiln::compiler::merge_packages;
using kiln::compiler::MergeError;
using kiln::compiler::MergeResult;
using kiln_test::as_bytes;

using Bytes = std::vector<uint8_t>;

template <int64_t Hot>
kiln::Outputs norms() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096, .hot = {Hot}});
  auto x = kiln::input("x", kiln::f32, {n, 37});
  auto w = kiln::input("w", kiln::f32, {37});
  auto b = kiln::input("b", kiln::f32, {37});
  return kiln::outputs(kiln::layernorm(x, w, b), kiln::softmax(x)).named({"ln", "sm"});
}

// Same name, signature and symbols as norms, another computation.
kiln::Outputs norms_restructured() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096, .hot = {8}});
  auto x = kiln::input("x", kiln::f32, {n, 37});
  auto w = kiln::input("w", kiln::f32, {37});
  auto b = kiln::input("b", kiln::f32, {37});
  return kiln::outputs(kiln::layernorm(x, w, b), kiln::softmax(x * 2.0f)).named({"ln", "sm"});
}

// No constant depends on the width: only the signature tells W apart.
template <int64_t W, int64_t Max = 4096>
kiln::Outputs pointwise() {
  auto n = kiln::sym("n", {.min = 1, .max = Max});
  auto x = kiln::input("x", kiln::f32, {n, W});
  return kiln::outputs(kiln::exp(x) * 2.0f);
}

kiln::Outputs other() {
  auto x = kiln::input("x", kiln::f32, {8});
  return kiln::outputs(kiln::exp(x));
}

Bytes slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write(const fs::path& p, const Bytes& bytes) {
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

// A package built by the real generator for one CPU target.
fs::path generate(const fs::path& dir, const std::string& name, const kiln::ir::Graph& g) {
  kiln::compiler::GeneratorOptions o;
  o.name = name;
  o.cpp_namespace = name;
  o.targets = {"cpu:x86-64"};
  o.out_dir = dir / name / "out";
  o.work_dir = dir / name / "work";
  o.cxx = KILN_TEST_CLANGXX;
  o.ninja = KILN_TEST_NINJA;
  return kiln::compiler::run_generator(o, {g}).package;
}

// The graph's signature and IR, no specializations: enough for the checks
// that refuse a delta before any kernel matters.
Bytes ir_only_package(const kiln::ir::Graph& g) {
  fb::ManifestT m;
  auto target = std::make_unique<fb::TargetT>();
  target->name = "cpu:x86-64";
  target->device = fb::DeviceKind::Cpu;
  target->arch = "x86-64";
  m.targets.push_back(std::move(target));
  m.graphs.push_back(kiln::compiler::graph_entry(g, kiln::compiler::structure_hash(g)));
  return kiln::compiler::write_package(std::move(m), {});
}

MergeResult merge(const Bytes& base, const std::vector<const Bytes*>& deltas) {
  std::vector<std::span<const std::byte>> spans;
  for (const Bytes* d : deltas) spans.push_back(as_bytes(*d));
  return merge_packages(as_bytes(base), spans);
}

// The merge must fail with a MergeError about `graph` whose message holds
// every one of `parts`.
void expect_refused(const Bytes& base, const Bytes& delta, const std::string& graph,
                    const std::vector<std::string>& parts) {
  try {
    merge(base, {&delta});
    ADD_FAILURE() << "the delta was merged";
  } catch (const MergeError& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::invalid_argument);
    EXPECT_EQ(e.graph(), graph) << e.what();
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "missing '" << part << "' in: " << e.what();
    }
  }
}

std::vector<std::string> spec_names(const kiln::PackageReader& reader, const char* graph) {
  std::vector<std::string> names;
  for (const fb::Specialization* s :
       *reader.manifest().graphs()->LookupByKey(graph)->specializations()) {
    names.push_back(s->name()->str() + "@" +
                    reader.manifest().targets()->Get(s->target())->name()->str());
  }
  return names;
}

void check_against_interpreter(kiln::Package& pkg, const kiln::ir::Graph& g, int64_t n,
                               const std::string& want_spec) {
  const kiln_test::RandomCall call(g, n, static_cast<uint64_t>(n) * 7919 + 1);
  kiln::Graph& graph = pkg.graph(g.name);
  EXPECT_EQ(graph.select(call.inputs(), call.outputs()), want_spec) << "n=" << n;
  graph.call(call.inputs(), call.outputs());
  for (size_t i = 0; i < call.want().size(); ++i) {
    const auto& want = call.want()[i];
    EXPECT_TRUE(
        std::any_of(want.values.begin(), want.values.end(), [](double v) { return v != 0; }))
        << "output " << i << ": the reference is all zeros";
    double worst = 0;
    EXPECT_TRUE(kiln::compiler::all_close(call.got(i), want,
                                          kiln::compiler::tolerance_for(want.dtype), &worst))
        << g.name << " output " << i << " n=" << n << " worst/tol=" << worst;
  }
}

TEST(Merge, GeneratedDeltaRunsItsStaticSpecializationPrecompiled) {
  const fs::path dir = kiln_test::fresh_dir("merge/generated");
  const auto g8 = kiln::trace("norms", &norms<8>);
  const Bytes base = slurp(generate(dir, "base", g8));
  const Bytes delta = slurp(generate(dir, "delta", kiln::trace("norms", &norms<64>)));

  const MergeResult r = merge(base, {&delta});
  // The general specializations share a key (hot values are not in it).
  EXPECT_EQ(r.summary.specializations_added, 1u);
  EXPECT_EQ(r.summary.specializations_skipped, 1u);
  EXPECT_EQ(r.summary.graphs, 1u);
  EXPECT_EQ(r.summary.graphs_extended, 1u);
  EXPECT_EQ(r.summary.targets_added, 0u);
  EXPECT_EQ(r.summary.blobs_added, 1u);  // the delta's shared object
  EXPECT_EQ(r.summary.blobs, 2u);
  EXPECT_GT(r.summary.kernels_added, 0u);

  const kiln::PackageReader reader = kiln::PackageReader::open_memory(as_bytes(r.package));
  EXPECT_EQ(kiln_test::blob_digest_problems(reader), "");  // verifies every blob
  EXPECT_EQ(spec_names(reader, "norms"),
            (std::vector<std::string>{"n=64@cpu:x86-64", "n=8@cpu:x86-64", "general@cpu:x86-64"}));
  const auto* flags = reader.manifest().provenance()->flags();
  ASSERT_NE(flags, nullptr);
  EXPECT_TRUE(std::any_of(flags->begin(), flags->end(), [](const flatbuffers::String* f) {
    return f->str().starts_with("merge: 1 specialization from a delta (kiln ");
  }));

  // No compiles: a miss would throw under fail_on_recompile.
  kiln::Package pkg =
      kiln::Package::open_memory(as_bytes(r.package), {.stance = kiln::Stance::fail_on_recompile});
  check_against_interpreter(pkg, g8, 64, "n=64");
  check_against_interpreter(pkg, g8, 8, "n=8");
  check_against_interpreter(pkg, g8, 5, "general");
  check_against_interpreter(pkg, g8, 1000, "general");
  EXPECT_EQ(pkg.graph("norms").counters().misses, 0u);

  // Deterministic, and merging again (alone or twice in one go) adds nothing.
  EXPECT_EQ(merge(base, {&delta}).package, r.package);
  const MergeResult again = merge(r.package, {&delta});
  EXPECT_EQ(again.summary.specializations_added, 0u);
  EXPECT_EQ(again.summary.specializations_skipped, 2u);
  EXPECT_EQ(again.package, r.package);
  const MergeResult twice = merge(base, {&delta, &delta});
  EXPECT_EQ(twice.summary.specializations_added, 1u);
  EXPECT_EQ(twice.summary.specializations_skipped, 3u);
  EXPECT_EQ(twice.package, r.package);
}

TEST(Merge, AGraphThatDiffersOrIsMissingIsRefusedNamingWhatDiffers) {
  const Bytes base = ir_only_package(kiln::trace("norms", &norms<8>));
  expect_refused(base, ir_only_package(kiln::trace("norms", &norms_restructured)), "norms",
                 {"delta '#1'", "graph 'norms'", "structure_hash: expected "});
  expect_refused(base, ir_only_package(kiln::trace("other", &other)), "other",
                 {"graph 'other': name: expected one of the base's graphs (norms), got 'other', "
                  "which the base lacks"});
  // Shapes are not in the structure hash; the signature check catches them.
  const Bytes pw = ir_only_package(kiln::trace("pw", &pointwise<64>));
  expect_refused(pw, ir_only_package(kiln::trace("pw", &pointwise<32>)), "pw",
                 {"input 0: expected x: f32[n, 64], got x: f32[n, 32]"});
  expect_refused(pw, ir_only_package(kiln::trace("pw", &pointwise<64, 2048>)), "pw",
                 {"symbol 0: expected n in [1, 4096], got n in [1, 2048]"});
  // Other hot values are the same graph.
  const MergeResult same = merge(base, {&base});
  EXPECT_EQ(same.summary.specializations_added, 0u);
  const Bytes hot64 = ir_only_package(kiln::trace("norms", &norms<64>));
  EXPECT_EQ(merge(base, {&hot64}).package, same.package);
}

TEST(Merge, ATruncatedOrDamagedDeltaIsTheReadersTypedError) {
  const fs::path dir = kiln_test::fresh_dir("merge/truncated");
  const Bytes base = kiln_test::make_test_package();
  Bytes delta = kiln_test::make_test_package({{.static_n8 = false, .more_statics = {16}}});
  write(dir / "base.kiln", base);
  write(dir / "delta.kiln", Bytes(delta.begin(), delta.begin() + delta.size() / 2));
  const std::vector<fs::path> deltas = {dir / "delta.kiln"};
  try {
    kiln::compiler::merge_package_files(dir / "base.kiln", deltas, dir / "out.kiln");
    ADD_FAILURE() << "a truncated delta was merged";
  } catch (const kiln::PackageError& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::package_truncated);
    EXPECT_NE(std::string(e.what()).find("merge: delta '" + (dir / "delta.kiln").string() + "'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "out.kiln"));

  // A flipped byte in a blob: the file checksum fails, the same way.
  delta[delta.size() - 1] ^= 0x40;
  try {
    merge(base, {&delta});
    ADD_FAILURE() << "a damaged delta was merged";
  } catch (const kiln::PackageError& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::package_checksum_mismatch);
    EXPECT_NE(std::string(e.what()).find("merge: delta '#1'"), std::string::npos) << e.what();
  }
}

// Hand-built base: n=8 then general (key 1), per target. The delta adds a
// static n=16 and a dynamic "general,div4" (n % 4 == 0, another key) with
// kernels of its own names.
fb::ManifestT delta_manifest(const std::vector<std::string>& targets) {
  kiln_test::TestGraphOptions o;
  o.static_n8 = false;
  o.more_statics = {16};
  o.divisible_by = 4;
  fb::ManifestT m = kiln_test::make_test_manifest({o}, targets);
  auto& specs = m.graphs[0]->specializations;
  specs.back()->name = "general,div4";
  specs.back()->key = std::make_unique<fb::Hash128>(2, 0xabc);
  for (auto& k : m.kernels) k->name += "#delta";
  return m;
}

TEST(Merge, StaticSpecializationsGoFirstDynamicOnesAfterTheBasesStaticsPerTarget) {
  const std::vector<std::string> two = {"cpu:x86-64", "cpu:x86-64-v2"};
  fb::ManifestT base_manifest = kiln_test::make_test_manifest({{}}, two);
  for (int64_t n : {8, -1}) {
    base_manifest.graphs[0]->specializations.push_back(
        kiln_test::make_specialization({.target = 1}, n));
  }
  const Bytes base =
      kiln::compiler::write_package(std::move(base_manifest), kiln_test::test_blobs(2));
  // The delta is for the base's second target only (its target 0).
  const Bytes delta =
      kiln::compiler::write_package(delta_manifest({"cpu:x86-64-v2"}), kiln_test::test_blobs(1));
  const MergeResult r = merge(base, {&delta});
  EXPECT_EQ(r.summary.specializations_added, 2u);
  EXPECT_EQ(r.summary.specializations_skipped, 0u);
  EXPECT_EQ(r.summary.kernels_added, 1u);  // only the one the plans launch
  const kiln::PackageReader reader = kiln::PackageReader::open_memory(as_bytes(r.package));
  EXPECT_EQ(kiln_test::blob_digest_problems(reader), "");  // verifies every blob
  EXPECT_EQ(spec_names(reader, "scale_add"),
            (std::vector<std::string>{"n=8@cpu:x86-64", "general@cpu:x86-64", "n=16@cpu:x86-64-v2",
                                      "n=8@cpu:x86-64-v2", "general,div4@cpu:x86-64-v2",
                                      "general@cpu:x86-64-v2"}));
}

TEST(Merge, AddedSpecializationsRunTheirOwnKernelsInSelectionOrder) {
  const Bytes base = kiln_test::make_test_package();
  // The delta's kernels have the base's entry points but add kShiftedY to y:
  // an added specialization that ran the base's kernel would be off by it.
  const Bytes delta = kiln::compiler::write_package(
      delta_manifest({"cpu:x86-64"}),
      kiln_test::test_blobs(1, &kiln_test::shifted_scale_add_shared_object()));
  const MergeResult r = merge(base, {&delta});
  kiln::Package pkg =
      kiln::Package::open_memory(as_bytes(r.package), {.stance = kiln::Stance::fail_on_recompile});
  kiln::Graph& g = pkg.graph("scale_add");
  struct Expected {
    int64_t n;
    std::string specialization;
    float shift;  // kShiftedY where the delta's kernel must run
  };
  for (const auto& [n, want, shift] :
       std::vector<Expected>{{16, "n=16", kiln_test::kShiftedY},
                             {8, "n=8", 0.0f},
                             {12, "general,div4", kiln_test::kShiftedY},
                             {5, "general", 0.0f}}) {
    std::vector<float> x(static_cast<size_t>(n * kiln_test::kRowWidth)), w(kiln_test::kRowWidth);
    std::vector<float> y(x.size(), -1.0f);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25f * static_cast<float>(i % 97) - 3.0f;
    for (size_t i = 0; i < w.size(); ++i) w[i] = 0.5f + static_cast<float>(i);
    const kiln::TensorView xv(x.data(), kiln::DType::f32, {n, kiln_test::kRowWidth});
    const kiln::TensorView wv(w.data(), kiln::DType::f32, {kiln_test::kRowWidth});
    const kiln::TensorView yv(y.data(), kiln::DType::f32, {n, kiln_test::kRowWidth});
    const DLTensor* in[] = {&xv.dl(), &wv.dl()};
    const DLTensor* out[] = {&yv.dl()};
    EXPECT_EQ(g.select(in, out), want) << "n=" << n;
    g.call(in, out);
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_EQ(y[i], 2.0f * x[i] + w[i % w.size()] + shift)
          << "n=" << n << " (" << want << ") element " << i;
    }
  }
}

TEST(Merge, AKernelNameUnderAnotherKeyIsRefused) {
  const Bytes base = kiln_test::make_test_package();
  // n=16 is new, but its kernel has the name of the base's kernel.
  const Bytes delta = kiln_test::make_test_package({{.static_n8 = false, .more_statics = {16}}});
  expect_refused(base, delta, "scale_add",
                 {"specialization 'n=16' (key ", "kernel 'kiln_test_scale_add@cpu:x86-64'",
                  "expected a kernel name the package does not have",
                  "got the name of a kernel the package has, used by graph 'scale_add', "
                  "specialization 'n=8' (key "});
}

TEST(Merge, ANewTargetIsAddedOnlyWhereItCannotHideTheBasesSpecializations) {
  const Bytes delta_v3 =
      kiln::compiler::write_package(delta_manifest({"cpu:x86-64-v3"}), kiln_test::test_blobs(1));
  // On a v3 CPU the runtime would take the delta's v3 target alone.
  try {
    merge(kiln_test::make_test_package(), {&delta_v3});
    ADD_FAILURE() << "a v3 target was added next to x86-64";
  } catch (const MergeError& e) {
    EXPECT_EQ(e.subject(), "target 'cpu:x86-64-v3'");
    EXPECT_NE(std::string(e.what()).find("KILN_CPU_LEVEL=x86-64"), std::string::npos) << e.what();
  }
  // Below the base's level it only covers CPUs the base could not run on.
  const Bytes base_v3 = kiln::compiler::write_package(
      kiln_test::make_test_manifest({{}}, {"cpu:x86-64-v3"}), kiln_test::test_blobs(1));
  const Bytes delta_x86 =
      kiln::compiler::write_package(delta_manifest({"cpu:x86-64"}), kiln_test::test_blobs(1));
  const MergeResult r = merge(base_v3, {&delta_x86});
  EXPECT_EQ(r.summary.targets_added, 1u);
  const kiln::PackageReader reader = kiln::PackageReader::open_memory(as_bytes(r.package));
  EXPECT_EQ(kiln_test::blob_digest_problems(reader), "");  // verifies every blob
  EXPECT_EQ(spec_names(reader, "scale_add"),
            (std::vector<std::string>{"n=8@cpu:x86-64-v3", "general@cpu:x86-64-v3",
                                      "n=16@cpu:x86-64", "general,div4@cpu:x86-64"}));
  // A CUDA device picks one target: a new arch could hide the base's.
  kiln_test::CudaTestPackage cuda_base =
      kiln_test::make_cuda_test_package({.targets = {"cuda:sm_80"}});
  kiln_test::CudaTestPackage cuda_delta =
      kiln_test::make_cuda_test_package({.targets = {"cuda:sm_90"}});
  cuda_delta.manifest.graphs[0]->specializations[0]->key = std::make_unique<fb::Hash128>(7, 0xf111);
  const Bytes cb = kiln_test::write_cuda_test_package(std::move(cuda_base));
  const Bytes cd = kiln_test::write_cuda_test_package(std::move(cuda_delta));
  try {
    merge(cb, {&cd});
    ADD_FAILURE() << "sm_90 was added next to sm_80";
  } catch (const MergeError& e) {
    EXPECT_EQ(e.subject(), "target 'cuda:sm_90'");
    EXPECT_EQ(e.expected(), "a target of the base (cuda:sm_80)");
  }
}

// A graph's GraphEntry.targets as target names; "(absent)" when it has none
// (every target of the package).
std::vector<std::string> graph_targets(const kiln::PackageReader& reader, const char* graph) {
  const auto* targets = reader.manifest().graphs()->LookupByKey(graph)->targets();
  if (targets == nullptr) return {"(absent)"};
  std::vector<std::string> names;
  for (uint32_t t : *targets) names.push_back(reader.manifest().targets()->Get(t)->name()->str());
  return names;
}

std::vector<uint32_t> graph_target_indices(const kiln::PackageReader& reader, const char* graph) {
  const auto* targets = reader.manifest().graphs()->LookupByKey(graph)->targets();
  return targets ? std::vector<uint32_t>(targets->begin(), targets->end())
                 : std::vector<uint32_t>{};
}

TEST(Merge, ADeltaWithCodeForATargetAGraphLacksAddsItToTheGraphsTargetsInOrder) {
  // Base targets 0 cpu:x86-64, 1 cpu:x86-64-v2, 2 cpu:x86-64-v3; scale_add
  // is kept to v3, scale_add_temp to v2.
  fb::ManifestT base_manifest = kiln_test::make_test_manifest(
      {{.target = 2}, {.name = "scale_add_temp", .use_temp = true, .target = 1}},
      {"cpu:x86-64", "cpu:x86-64-v2", "cpu:x86-64-v3"});
  base_manifest.graphs[0]->targets = {2};
  base_manifest.graphs[1]->targets = {1};
  const Bytes base =
      kiln::compiler::write_package(std::move(base_manifest), kiln_test::test_blobs(3));

  // Code for cpu:x86-64, a target the package has and scale_add lacks: it
  // goes before v3 in the list, and scale_add_temp, which gains nothing,
  // keeps its own.
  const Bytes delta_x86 =
      kiln::compiler::write_package(delta_manifest({"cpu:x86-64"}), kiln_test::test_blobs(1));
  const MergeResult r = merge(base, {&delta_x86});
  EXPECT_EQ(r.summary.specializations_added, 2u);
  EXPECT_EQ(r.summary.targets_added, 0u);
  const kiln::PackageReader reader = kiln::PackageReader::open_memory(as_bytes(r.package));
  EXPECT_EQ(kiln_test::blob_digest_problems(reader), "");  // verifies every blob
  EXPECT_EQ(graph_target_indices(reader, "scale_add"), (std::vector<uint32_t>{0, 2}));
  EXPECT_EQ(graph_targets(reader, "scale_add"),
            (std::vector<std::string>{"cpu:x86-64", "cpu:x86-64-v3"}));
  EXPECT_EQ(graph_targets(reader, "scale_add_temp"), (std::vector<std::string>{"cpu:x86-64-v2"}));
  EXPECT_EQ(spec_names(reader, "scale_add"),
            (std::vector<std::string>{"n=8@cpu:x86-64-v3", "general@cpu:x86-64-v3",
                                      "n=16@cpu:x86-64", "general,div4@cpu:x86-64"}));

  // A target the package lacks is appended to the package's targets, then
  // to the graph's, after the ones it has.
  fb::ManifestT v3_manifest = kiln_test::make_test_manifest({{}}, {"cpu:x86-64-v3"});
  v3_manifest.graphs[0]->targets = {0};
  const Bytes base_v3 =
      kiln::compiler::write_package(std::move(v3_manifest), kiln_test::test_blobs(1));
  const MergeResult appended = merge(base_v3, {&delta_x86});
  EXPECT_EQ(appended.summary.targets_added, 1u);
  const kiln::PackageReader appended_reader =
      kiln::PackageReader::open_memory(as_bytes(appended.package));
  EXPECT_EQ(graph_target_indices(appended_reader, "scale_add"), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(graph_targets(appended_reader, "scale_add"),
            (std::vector<std::string>{"cpu:x86-64-v3", "cpu:x86-64"}));
}

TEST(Merge, ACpuLevelThatWouldHideAGraphsOwnCodeIsRefused) {
  // scale_add is kept to cpu:x86-64; scale_add_temp has code on the
  // package's cpu:x86-64-v3. A v3 CPU runs scale_add's x86-64 code: with v3
  // in its list it would run the delta's v3 code alone.
  fb::ManifestT base_manifest =
      kiln_test::make_test_manifest({{}, {.name = "scale_add_temp", .use_temp = true, .target = 1}},
                                    {"cpu:x86-64", "cpu:x86-64-v3"});
  base_manifest.graphs[0]->targets = {0};
  const Bytes base =
      kiln::compiler::write_package(std::move(base_manifest), kiln_test::test_blobs(2));
  const Bytes delta_v3 =
      kiln::compiler::write_package(delta_manifest({"cpu:x86-64-v3"}), kiln_test::test_blobs(1));
  expect_refused(base, delta_v3, "scale_add",
                 {"kiln: merge: delta '#1': graph 'scale_add': target 'cpu:x86-64-v3': expected "
                  "one of the graph's targets (cpu:x86-64) or a CPU level below them, got a "
                  "level above one of them",
                  "on a CPU that runs x86-64-v3 the graph would see only the delta's "
                  "specializations"});
  try {
    merge(base, {&delta_v3});
    ADD_FAILURE() << "v3 was added to a graph kept to x86-64";
  } catch (const MergeError& e) {
    EXPECT_EQ(e.subject(), "target 'cpu:x86-64-v3'");
    EXPECT_EQ(e.expected(), "one of the graph's targets (cpu:x86-64) or a CPU level below them");
  }
  // The same delta is fine for a graph that lists every target.
  fb::ManifestT listed_manifest =
      kiln_test::make_test_manifest({{}, {.name = "scale_add_temp", .use_temp = true, .target = 1}},
                                    {"cpu:x86-64", "cpu:x86-64-v3"});
  listed_manifest.graphs[0]->targets = {0, 1};
  const Bytes listed =
      kiln::compiler::write_package(std::move(listed_manifest), kiln_test::test_blobs(2));
  const MergeResult r = merge(listed, {&delta_v3});
  EXPECT_EQ(r.summary.specializations_added, 2u);
  EXPECT_EQ(
      graph_target_indices(kiln::PackageReader::open_memory(as_bytes(r.package)), "scale_add"),
      (std::vector<uint32_t>{0, 1}));
}

TEST(Merge, GraphsWithoutATargetListKeepNone) {
  // Packages from before GraphEntry.targets: a delta on a target the base
  // has, and one on a target it gains, leave the lists absent.
  const Bytes delta_x86 =
      kiln::compiler::write_package(delta_manifest({"cpu:x86-64"}), kiln_test::test_blobs(1));
  const MergeResult same_target = merge(kiln_test::make_test_package(), {&delta_x86});
  EXPECT_EQ(same_target.summary.specializations_added, 2u);
  EXPECT_EQ(
      graph_targets(kiln::PackageReader::open_memory(as_bytes(same_target.package)), "scale_add"),
      std::vector<std::string>{"(absent)"});
  const Bytes base_v3 = kiln::compiler::write_package(
      kiln_test::make_test_manifest({{}}, {"cpu:x86-64-v3"}), kiln_test::test_blobs(1));
  const MergeResult new_target = merge(base_v3, {&delta_x86});
  EXPECT_EQ(new_target.summary.targets_added, 1u);
  EXPECT_EQ(
      graph_targets(kiln::PackageReader::open_memory(as_bytes(new_target.package)), "scale_add"),
      std::vector<std::string>{"(absent)"});
}

TEST(Merge, ALibraryCallKeepsItsNoKernelIndexAndItsCall) {
  // Base and delta: the same gemm graph, the delta's specialization under
  // another key. Its launch runs no kernel, so none is copied or remapped.
  kiln::GemmProblem p;
  p.m = 4;
  p.n = 8;
  p.k = 16;
  p.lda = 16;
  p.ldb = 8;
  p.epilogue = kiln::GemmEpilogue::bias_relu;
  const Bytes base = kiln_test::write_gemm_test_package(kiln_test::make_gemm_test_package(p));
  kiln_test::GemmTestPackage delta_package = kiln_test::make_gemm_test_package(p);
  fb::SpecializationT& spec = *delta_package.manifest.graphs[0]->specializations[0];
  spec.name = "from_delta";
  spec.key = std::make_unique<fb::Hash128>(0xde17a, 0x6e33);
  const Bytes delta = kiln_test::write_gemm_test_package(std::move(delta_package));
  const MergeResult merged = merge(base, {&delta});
  EXPECT_EQ(merged.summary.specializations_added, 1u);
  EXPECT_EQ(merged.summary.kernels_added, 0u);
  const kiln::PackageReader reader = kiln::PackageReader::open_memory(as_bytes(merged.package));
  EXPECT_EQ(spec_names(reader, "gemm"),
            (std::vector<std::string>{"from_delta@cuda:sm_90", "static@cuda:sm_90"}));
  for (const fb::Specialization* s :
       *reader.manifest().graphs()->LookupByKey("gemm")->specializations()) {
    const fb::KernelLaunch* launch = s->plan()->launches()->Get(0);
    EXPECT_EQ(launch->kernel(), kiln::kNoKernel);
    ASSERT_NE(launch->library_call(), nullptr);
    EXPECT_EQ(launch->library_call()->gemm()->epilogue(), fb::GemmEpilogue::BiasRelu);
  }
  // kiln verify and inspect read it (the gemm in words and in JSON).
  const fs::path file = kiln_test::fresh_dir("merge/gemm") / "merged.kiln";
  write(file, merged.package);
  const kiln::support::ProcessResult verify =
      kiln::support::run_process({KILN_TEST_KILN_CLI, "verify", file.string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  const std::string gemm =
      "gemm f32 x f32 -> f32, m 4, n 8, k 16, batch 1, lda 16, ldb 8, stride_a 0, stride_b 0, "
      "alpha 1, epilogue bias_relu";
  const kiln::support::ProcessResult text =
      kiln::support::run_process({KILN_TEST_KILN_CLI, "inspect", file.string()});
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("launch 0: " + gemm + " (buffers 0, 1, 3, 2)"), std::string::npos)
      << text.output;
  const kiln::support::ProcessResult json =
      kiln::support::run_process({KILN_TEST_KILN_CLI, "inspect", file.string(), "--json"});
  EXPECT_EQ(json.exit_code, 0) << json.output;
  EXPECT_NE(json.output.find("{\"library_call\":\"" + gemm + "\"}"), std::string::npos)
      << json.output;
}

TEST(Merge, TheCliWritesTheMergedPackageAndReportsErrors) {
  const fs::path dir = kiln_test::fresh_dir("merge/cli");
  const fs::path base = generate(dir, "base", kiln::trace("norms", &norms<8>));
  const fs::path delta = generate(dir, "delta", kiln::trace("norms", &norms<64>));
  const fs::path out = dir / "merged.kiln";
  const kiln::support::ProcessResult r = kiln::support::run_process(
      {KILN_TEST_KILN_CLI, "merge", base.string(), delta.string(), "-o", out.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("merged 1 delta into " + out.string() +
                          ": 1 graph (1 extended), 1 specialization added, 1 skipped"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("added 1 kernel, 1 blob and 0 targets, 2 blobs and "), std::string::npos)
      << r.output;
  const Bytes base_bytes = slurp(base), delta_bytes = slurp(delta);
  EXPECT_EQ(slurp(out), merge(base_bytes, {&delta_bytes}).package);
  const kiln::support::ProcessResult verify =
      kiln::support::run_process({KILN_TEST_KILN_CLI, "verify", out.string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find("\ndigests: every blob matches its BLAKE2b-256 digest\n"),
            std::string::npos)
      << verify.output;

  write(dir / "other.kiln", ir_only_package(kiln::trace("norms", &norms_restructured)));
  const kiln::support::ProcessResult refused = kiln::support::run_process(
      {KILN_TEST_KILN_CLI, "merge", base.string(), (dir / "other.kiln").string(), "-o",
       (dir / "refused.kiln").string()});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("error[invalid_argument]: kiln: merge: delta '" +
                                (dir / "other.kiln").string() +
                                "': graph 'norms': structure_hash: expected "),
            std::string::npos)
      << refused.output;
  EXPECT_FALSE(fs::exists(dir / "refused.kiln"));

  const kiln::support::ProcessResult usage =
      kiln::support::run_process({KILN_TEST_KILN_CLI, "merge", base.string(), delta.string()});
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  EXPECT_NE(usage.output.find("merge: expected -o OUT"), std::string::npos) << usage.output;
}

}  // namespace
