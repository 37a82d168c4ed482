// The generator end to end: traced graphs to a package that the runtime
// opens and runs, checked against the interpreter on random inputs.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/generator.h"
#include "kiln/compiler/interpreter.h"
#include "kiln/compiler/ninja_driver.h"
#include "kiln/graph.h"
#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "test_support/random_call.h"
#include "test_support/scratch_files.h"

namespace {

namespace fs = std::filesystem;

kiln::Outputs norms() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096, .hot = {4}});
  auto x = kiln::input("x", kiln::f32, {n, 37});
  auto w = kiln::input("w", kiln::f32, {37});
  auto b = kiln::input("b", kiln::f32, {37});
  return kiln::outputs(kiln::layernorm(x, w, b), kiln::softmax(x)).named({"ln", "sm"});
}

kiln::Outputs pointwise() {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20});
  auto x = kiln::input("x", kiln::bf16, {n});
  return kiln::outputs(kiln::gelu(x * 1.5f + 0.25f));
}

kiln::compiler::GeneratorOptions options(const fs::path& dir) {
  kiln::compiler::GeneratorOptions o;
  o.name = "gen_test";
  o.cpp_namespace = "gen_test";
  o.targets = {"cpu:x86-64", "cpu:x86-64-v3"};
  o.out_dir = dir / "out";
  o.work_dir = dir / "work";
  o.cxx = KILN_TEST_CLANGXX;
  o.ninja = KILN_TEST_NINJA;
  return o;
}

std::vector<kiln::ir::Graph> graphs() {
  return {kiln::trace("norms", &norms), kiln::trace("pointwise", &pointwise)};
}

void check_against_interpreter(kiln::Package& pkg, const kiln::ir::Graph& g, int64_t n,
                               const std::string& want_spec) {
  const kiln_test::RandomCall call(g, n, static_cast<uint64_t>(n) * 7919);
  kiln::Graph& graph = pkg.graph(g.name);
  EXPECT_EQ(graph.select(call.inputs(), call.outputs()), want_spec);
  graph.call(call.inputs(), call.outputs());
  for (size_t i = 0; i < call.want().size(); ++i) {
    double worst = 0;
    EXPECT_TRUE(kiln::compiler::all_close(
        call.got(i), call.want()[i], kiln::compiler::tolerance_for(call.want()[i].dtype), &worst))
        << g.name << " output " << i << " n=" << n << " worst/tol=" << worst;
  }
}

TEST(Generator, SpecializationsAreStaticFirstThenGeneral) {
  const auto g = kiln::trace("norms", &norms);
  const auto specs = kiln::compiler::enumerate_specializations(g);
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0], (kiln::ir::SymbolValues{4}));
  EXPECT_EQ(specs[1], (kiln::ir::SymbolValues{-1}));
  EXPECT_EQ(kiln::compiler::specialization_name(g, specs[0]), "n=4");
  EXPECT_EQ(kiln::compiler::specialization_name(g, specs[1]), "general");
}

#ifdef KILN_TEST_NVCC
kiln::Outputs small_scale() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096});
  auto x = kiln::input("x", kiln::f32, {n, 64});
  return kiln::outputs(x * 2.0f);
}

// CUDA general specializations: the int-indexed pair first, behind an
// IndexWidth guard; the 64-bit pair only where the declared ranges reach
// the limit.
TEST(Generator, CudaGeneralSpecializationsComeInIndexWidths) {
  const fs::path dir = kiln_test::fresh_dir("generator/index_width");
  auto o = options(dir);
  o.targets = {"cuda:sm_90"};
  o.nvcc = KILN_TEST_NVCC;
  const auto summary = kiln::compiler::run_generator(
      o, {kiln::trace("norms", &norms), kiln::trace("small_scale", &small_scale)});
  const kiln::PackageReader reader = kiln::PackageReader::open_file(summary.package);
  auto names = [&](const char* graph) {
    std::vector<std::string> out;
    const kiln::fb::GraphEntry* g = reader.manifest().graphs()->LookupByKey(graph);
    for (const kiln::fb::Specialization* s : *g->specializations()) {
      std::string name = s->name()->str();
      bool index_width = false;
      for (const kiln::fb::Guard* guard : *s->guards()) {
        index_width |= guard->kind() == kiln::fb::GuardKind::IndexWidth;
      }
      EXPECT_EQ(index_width, name.find("index32") != std::string::npos) << name;
      out.push_back(name);
    }
    return out;
  };
  // norms: n up to 4096 rows of 37: small; no vectors for an odd width.
  EXPECT_EQ(names("norms"), (std::vector<std::string>{"n=4", "general,index32"}));
  EXPECT_EQ(names("small_scale"),
            (std::vector<std::string>{"general,index32", "general,index32,unaligned"}));
  // n up to 2^20 rows of 4096: 2^32 elements, past the limit.
  const auto big = [] {
    auto n = kiln::sym("n", {.min = 1, .max = 1 << 20});
    auto x = kiln::input("x", kiln::f32, {n, 4096});
    return kiln::outputs(x * 2.0f);
  };
  const auto big_summary = kiln::compiler::run_generator(o, {kiln::trace("big", big)});
  const kiln::PackageReader big_reader = kiln::PackageReader::open_file(big_summary.package);
  std::vector<std::string> big_names;
  for (const auto* s : *big_reader.manifest().graphs()->Get(0)->specializations()) {
    big_names.push_back(s->name()->str());
  }
  EXPECT_EQ(big_names, (std::vector<std::string>{"general,index32", "general,index32,unaligned",
                                                 "general", "general,unaligned"}));
}
#endif

TEST(Generator, TargetsAreValidated) {
  EXPECT_EQ(kiln::compiler::parse_target("cpu:x86-64-v3").arch, "x86-64-v3");
  EXPECT_THROW(kiln::compiler::parse_target("cpu:pentium"), std::invalid_argument);
  EXPECT_THROW(kiln::compiler::parse_target("gpu:foo"), std::invalid_argument);
}

TEST(Generator, BuildsAPackageThatRunsAndMatchesTheInterpreter) {
  const fs::path dir = kiln_test::fresh_dir("generator/e2e");
  const auto summary = kiln::compiler::run_generator(options(dir), graphs());
  EXPECT_EQ(summary.graphs, 2u);
  EXPECT_EQ(summary.specializations, 2u * (2 + 1));  // two targets; norms has n=4 + general
  for (const char* f : {"gen_test.kiln", "gen_test.h", "gen_test.cpp", "gen_test_embed.S"}) {
    EXPECT_TRUE(fs::exists(dir / "out" / f)) << f;
  }
  EXPECT_NE(
      kiln_test::slurp(dir / "out" / "gen_test.h").find("void norms(const kiln::TensorView& x"),
      std::string::npos);

  kiln::Package pkg = kiln::Package::open(summary.package);
  EXPECT_EQ(pkg.graph_names().size(), 2u);
  const auto gs = graphs();
  check_against_interpreter(pkg, gs[0], 4, "n=4");
  check_against_interpreter(pkg, gs[0], 1, "general");
  check_against_interpreter(pkg, gs[0], 3000, "general");
  check_against_interpreter(pkg, gs[1], 1, "general");
  check_against_interpreter(pkg, gs[1], 100003, "general");
}

// Reductions over other and several axes, prod, argmax and log_softmax,
// through the generator, the package and the runtime, f32 and bf16, with a
// hot size (static) and the general specialization.
kiln::Outputs reductions_f32() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096, .hot = {5}});
  auto x = kiln::input("x", kiln::f32, {n, 7, 3});
  return kiln::outputs(kiln::sum(x, 0), kiln::mean(x, {0, 2}, true), kiln::argmax(x, 1),
                       kiln::log_softmax(x, 1), kiln::prod(x, -1), kiln::max(x, kiln::all_axes(x)),
                       kiln::min(x, {1, 2}, true));
}

kiln::Outputs reductions_bf16() {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20});
  auto x = kiln::input("x", kiln::bf16, {n, 9});
  auto v = kiln::input("v", kiln::bf16, {n});
  return kiln::outputs(kiln::sum(x, 0, true), kiln::argmax(x, 0), kiln::log_softmax(x, 0),
                       kiln::mean(v), kiln::argmax(v));
}

TEST(Generator, ReductionsOverAnyAxesRunThroughThePackage) {
  const fs::path dir = kiln_test::fresh_dir("generator/reductions");
  const std::vector<kiln::ir::Graph> gs = {kiln::trace("reductions_f32", &reductions_f32),
                                           kiln::trace("reductions_bf16", &reductions_bf16)};
  const auto summary = kiln::compiler::run_generator(options(dir), gs);
  EXPECT_EQ(summary.graphs, 2u);
  kiln::Package pkg = kiln::Package::open(summary.package);
  check_against_interpreter(pkg, gs[0], 5, "n=5");
  check_against_interpreter(pkg, gs[0], 2, "general");
  check_against_interpreter(pkg, gs[0], 301, "general");
  check_against_interpreter(pkg, gs[1], 3, "general");
  check_against_interpreter(pkg, gs[1], 10007, "general");
  // mean(v) and argmax(v) over 100003 values: four partials each, on the
  // runtime's threads.
  check_against_interpreter(pkg, gs[1], 100003, "general");
}

// --no-general (NO_GENERAL): only the static specializations; other shapes
// miss, to be compiled by the fallback JIT. A graph without hot values then
// has none, and a graph without symbols keeps its one static specialization.
TEST(Generator, WithoutTheGeneralSpecializationOnlyHotShapesAreBuilt) {
  const auto hot = kiln::trace("norms", &norms);
  EXPECT_EQ(kiln::compiler::enumerate_specializations(hot, {{7}}, false),
            (std::vector<kiln::ir::SymbolValues>{{4}, {7}}));
  EXPECT_TRUE(
      kiln::compiler::enumerate_specializations(kiln::trace("pointwise", &pointwise), {}, false)
          .empty());
  const auto fixed = kiln::trace("fixed", [] {
    auto x = kiln::input("x", kiln::f32, {8});
    return kiln::outputs(x * 2.0f);
  });
  EXPECT_EQ(kiln::compiler::enumerate_specializations(fixed, {}, false),
            (std::vector<kiln::ir::SymbolValues>{{}}));

  const fs::path dir = kiln_test::fresh_dir("generator/no_general");
  auto o = options(dir);
  o.targets = {"cpu:x86-64"};
  o.general = false;
  const auto summary = kiln::compiler::run_generator(o, graphs());
  EXPECT_EQ(summary.specializations, 1u);  // norms' n=4
  kiln::Package pkg = kiln::Package::open(summary.package);
  const auto gs = graphs();
  check_against_interpreter(pkg, gs[0], 4, "n=4");
  for (const auto& [g, n] : {std::pair{&gs[0], int64_t{5}}, std::pair{&gs[1], int64_t{5}}}) {
    const kiln_test::RandomCall call(*g, n, 1);
    EXPECT_THROW(pkg.graph(g->name).call(call.inputs(), call.outputs()),
                 kiln::NoSpecializationError)
        << g->name;
  }
  pkg.set_stance(kiln::Stance::fail_on_recompile);
  const kiln_test::RandomCall call(gs[0], 5, 1);
  EXPECT_THROW(pkg.graph("norms").call(call.inputs(), call.outputs()), kiln::RecompileError);
}

TEST(Generator, OverlappingOutputIsRejectedNotComputedWrong) {
  const fs::path dir = kiln_test::fresh_dir("generator/overlap");
  const auto summary =
      kiln::compiler::run_generator(options(dir), {kiln::trace("pointwise", &pointwise)});
  kiln::Package pkg = kiln::Package::open(summary.package);
  std::vector<uint16_t> buf(64, 0x3f80);  // bf16 1.0
  kiln::Graph& g = pkg.graph("pointwise");
  try {
    g.call({kiln::TensorView(buf.data(), kiln::DType::bf16, {32})},
           {kiln::TensorView(buf.data() + 8, kiln::DType::bf16, {32})});
    FAIL() << "expected an error";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("output 'out0' overlaps input 'x'"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(buf[8], 0x3f80);  // nothing was written
  // Disjoint halves of one allocation are fine.
  g.call({kiln::TensorView(buf.data(), kiln::DType::bf16, {32})},
         {kiln::TensorView(buf.data() + 32, kiln::DType::bf16, {32})});
  EXPECT_NE(buf[32], 0x3f80);
}

TEST(Generator, SameInputsGiveTheSameBytesAndNoRebuild) {
  const fs::path dir = kiln_test::fresh_dir("generator/repro");
  const auto first = kiln::compiler::run_generator(options(dir), graphs());
  const std::string bytes = kiln_test::slurp(first.package);
  const auto mtime = fs::last_write_time(first.package);
  const fs::path library = dir / "work" / "cpu-x86-64-v3" / "cpu-x86-64-v3.so";
  ASSERT_TRUE(fs::exists(library));
  const auto library_mtime = fs::last_write_time(library);
  const auto second = kiln::compiler::run_generator(options(dir), graphs());
  EXPECT_EQ(kiln_test::slurp(second.package), bytes);
  EXPECT_EQ(fs::last_write_time(second.package), mtime);   // unchanged output is not rewritten
  EXPECT_EQ(fs::last_write_time(library), library_mtime);  // and nothing was recompiled or relinked

  // A fresh work directory (a clean build) reproduces the package bit for bit.
  auto other = options(kiln_test::fresh_dir("generator/repro2"));
  EXPECT_EQ(kiln_test::slurp(kiln::compiler::run_generator(other, graphs()).package), bytes);
}

// Every specialization's key in a package, "hi:lo", in manifest order.
std::vector<std::string> specialization_keys(const fs::path& package) {
  const kiln::PackageReader reader = kiln::PackageReader::open_file(package);
  std::vector<std::string> keys;
  for (const kiln::fb::GraphEntry* graph : *reader.manifest().graphs()) {
    for (const kiln::fb::Specialization* spec : *graph->specializations()) {
      keys.push_back(std::to_string(spec->key()->hi()) + ":" + std::to_string(spec->key()->lo()));
    }
  }
  return keys;
}

TEST(Generator, TagChangesEveryKey) {
  auto a = options(kiln_test::fresh_dir("generator/tag_a"));
  auto b = options(kiln_test::fresh_dir("generator/tag_b"));
  b.tag = "canary";
  const std::vector<std::string> untagged = specialization_keys(
      kiln::compiler::run_generator(a, {kiln::trace("pointwise", &pointwise)}).package);
  const std::vector<std::string> tagged = specialization_keys(
      kiln::compiler::run_generator(b, {kiln::trace("pointwise", &pointwise)}).package);
  // One general specialization per target, under a key of its own each.
  ASSERT_EQ(untagged.size(), 2u);
  ASSERT_EQ(tagged.size(), untagged.size());
  EXPECT_NE(untagged[0], untagged[1]);
  for (const std::string& key : tagged) {
    EXPECT_EQ(std::count(untagged.begin(), untagged.end(), key), 0)
        << "key " << key << " is the same with and without the tag";
  }
}

TEST(Generator, MissingCompilerIsAClearError) {
  auto o = options(kiln_test::fresh_dir("generator/nocxx"));
  o.cxx = "/nonexistent/clang++";
  try {
    kiln::compiler::run_generator(o, graphs());
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/clang++"), std::string::npos) << e.what();
  }
}

TEST(Generator, UnusedSymbolIsRejected) {
  const auto g = kiln::trace("unused", [] {
    kiln::sym("m");
    return kiln::outputs(kiln::input("x", kiln::f32, {3}) * 2.0f);
  });
  try {
    kiln::compiler::run_generator(options(kiln_test::fresh_dir("generator/unused")), {g});
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("symbol 'm' is used by no input"), std::string::npos);
  }
}

}  // namespace
