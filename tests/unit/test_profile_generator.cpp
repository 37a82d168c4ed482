// Profile-guided precompile: the shapes a .kprof recorded become static
// specializations (whole tuples, beside the hot ones), checked against the
// graphs' declarations; end to end, a recorded shape is then a hit on its
// own static specialization, computing what the interpreter does.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "kiln/compiler/generator.h"
#include "kiln/compiler/hash.h"
#include "kiln/compiler/interpreter.h"
#include "kiln/compiler/profile.h"
#include "kiln/graph.h"
#include "kiln/package_reader.h"
#include "kiln/profile_format.h"
#include "kiln/runtime.h"
#include "test_support/random_call.h"
#include "test_support/scratch_files.h"

namespace {

namespace fs = std::filesystem;
using kiln::ir::SymbolValues;

// Two symbols, one with hot values: a profile adds whole (r, c) tuples,
// never their cross product.
kiln::Outputs rows_cols() {
  auto r = kiln::sym("r", {.min = 1, .max = 4096, .hot = {2}});
  auto c = kiln::sym("c", {.min = 4, .max = 4096, .divisible_by = 4});
  auto x = kiln::input("x", kiln::f32, {r, c});
  auto b = kiln::input("b", kiln::f32, {c});
  return kiln::outputs(kiln::softmax(x * b));
}

// Every symbol hot: a profiled value equal to a hot one is that one.
kiln::Outputs norms() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096, .hot = {4}});
  auto x = kiln::input("x", kiln::f32, {n, 37});
  auto w = kiln::input("w", kiln::f32, {37});
  auto b = kiln::input("b", kiln::f32, {37});
  return kiln::outputs(kiln::layernorm(x, w, b));
}

std::vector<kiln::ir::Graph> graphs() {
  return {kiln::trace("norms", &norms), kiln::trace("rows_cols", &rows_cols)};
}

// As the generator sees them: canonical, sorted by name.
std::vector<kiln::ir::Graph> canonical_graphs() {
  std::vector<kiln::ir::Graph> out;
  for (const auto& g : graphs()) out.push_back(kiln::ir::canonicalize(g));
  return out;
}

std::string structure_of(kiln::Outputs (*fn)(), const char* name) {
  return kiln::compiler::structure_hash(kiln::trace(name, fn)).hex();
}

fs::path write_text(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

kiln::compiler::GeneratorOptions options(const fs::path& dir) {
  kiln::compiler::GeneratorOptions o;
  o.name = "profiled";
  o.cpp_namespace = "profiled";
  o.targets = {"cpu:x86-64"};
  o.out_dir = dir / "out";
  o.work_dir = dir / "work";
  o.cxx = KILN_TEST_CLANGXX;
  o.ninja = KILN_TEST_NINJA;
  return o;
}

std::vector<std::string> specialization_names(const kiln::Package& pkg, const char* graph) {
  std::vector<std::string> names;
  const auto* entry = pkg.reader().manifest().graphs()->LookupByKey(graph);
  for (const auto* s : *entry->specializations()) names.push_back(s->name()->str());
  return names;
}

// Runs `values` through the package: it must select `want_spec` and match
// the interpreter on random (non-zero) inputs.
void check_call(kiln::Package& pkg, const kiln::ir::Graph& g, const SymbolValues& values,
                const std::string& want_spec) {
  const kiln_test::RandomCall call(g, values, 7919u * static_cast<uint64_t>(values[0] + 1));
  kiln::Graph& graph = pkg.graph(g.name);
  EXPECT_EQ(graph.select(call.inputs(), call.outputs()), want_spec);
  graph.call(call.inputs(), call.outputs());
  for (size_t i = 0; i < call.want().size(); ++i) {
    double worst = 0;
    EXPECT_TRUE(kiln::compiler::all_close(
        call.got(i), call.want()[i], kiln::compiler::tolerance_for(call.want()[i].dtype), &worst))
        << g.name << " " << want_spec << " output " << i << " worst/tol=" << worst;
  }
}

bool has_warning(const std::vector<std::string>& warnings, const std::string& part) {
  return std::any_of(warnings.begin(), warnings.end(),
                     [&](const std::string& w) { return w.find(part) != std::string::npos; });
}

TEST(ProfileGenerator, ProfiledTuplesComeWholeMostSpecificFirstAndOnce) {
  const auto g = kiln::trace("rows_cols", &rows_cols);
  const auto specs =
      kiln::compiler::enumerate_specializations(g, {{5, 12}, {2, 8}, {3, 8}, {2, 8}});
  EXPECT_EQ(specs, (std::vector<SymbolValues>{{5, 12}, {2, 8}, {3, 8}, {2, -1}, {-1, -1}}));
  EXPECT_EQ(kiln::compiler::specialization_name(g, specs[0]), "r=5,c=12");
  EXPECT_EQ(kiln::compiler::specialization_name(g, specs[3]), "r=2,rest dynamic");

  const auto n = kiln::trace("norms", &norms);
  EXPECT_EQ(kiln::compiler::enumerate_specializations(n, {{4}, {7}}),
            (std::vector<SymbolValues>{{4}, {7}, {-1}}));
  EXPECT_THROW(kiln::compiler::enumerate_specializations(n, {{4, 1}}), std::invalid_argument);
}

TEST(ProfileGenerator, ShapesThatDoNotFitTheirGraphAreSkippedWithAWarning) {
  const fs::path dir = kiln_test::fresh_dir("profile_generator/fit");
  const std::string rc = "rows_cols " + structure_of(&rows_cols, "rows_cols");
  const std::string nm = "norms " + structure_of(&norms, "norms");
  const fs::path a =
      write_text(dir / "a.kprof", "kiln-profile 1\n" + rc + " r=3 c=8 5\n" +                  // 2
                                      rc + " r=5000 c=8 1\n" +                                // 3
                                      rc + " r=3 c=6 1\n" +                                   // 4
                                      rc + " r=3 c=8 k=1 1\n" +                               // 5
                                      rc + " r=3 1\n" +                                       // 6
                                      "rows_cols " + std::string(32, 'e') + " r=1 c=4 9\n" +  // 7
                                      "nosuch " + std::string(32, '0') + " 2\n" +             // 8
                                      nm + " n=7 1\n");                                       // 9
  const fs::path b =
      write_text(dir / "b.kprof", "kiln-profile 1\n" + rc + " r=3 c=8 2\n" + rc + " r=1 c=4 1\n");
  const kiln::compiler::ProfiledShapes shapes =
      kiln::compiler::read_profiled_shapes({a, b}, canonical_graphs());

  ASSERT_EQ(shapes.by_graph.count("rows_cols"), 1u);
  const auto& rcs = shapes.by_graph.at("rows_cols");
  ASSERT_EQ(rcs.size(), 2u);
  EXPECT_EQ(rcs[0].values, (SymbolValues{1, 4}));
  EXPECT_EQ(rcs[0].where, b.string() + ":3");
  EXPECT_EQ(rcs[1].values, (SymbolValues{3, 8}));
  EXPECT_EQ(rcs[1].count, 7u);  // summed over both files
  EXPECT_EQ(rcs[1].where, a.string() + ":2");
  ASSERT_EQ(shapes.by_graph.count("norms"), 1u);
  EXPECT_EQ(shapes.by_graph.at("norms")[0].values, SymbolValues{7});

  const auto& w = shapes.warnings;
  EXPECT_EQ(w.size(), 6u);
  const std::string at = "profile " + a.string();
  EXPECT_TRUE(has_warning(w, at + ":3: graph 'rows_cols' shape c=8,r=5000: r = 5000 is outside "
                                  "its declared range [1, 4096]; skipped"))
      << testing::PrintToString(w);
  EXPECT_TRUE(has_warning(
      w, at + ":4: graph 'rows_cols' shape c=6,r=3: c = 6 is not divisible by 4 as declared"));
  EXPECT_TRUE(has_warning(w, at + ":5: graph 'rows_cols' shape c=8,k=1,r=3: symbol 'k' is not "
                                  "one of the graph's (r, c)"));
  EXPECT_TRUE(has_warning(w, at + ":6: graph 'rows_cols' shape r=3: no value for symbol 'c'"));
  EXPECT_TRUE(has_warning(w,
                          "profile: graph 'rows_cols' changed since it was profiled: 1 shapes "
                          "recorded for structure " +
                              std::string(32, 'e') + " (first at " + a.string() + ":7)"));
  EXPECT_TRUE(has_warning(w, "profile: graph 'nosuch' (1 shapes, first at " + a.string() +
                                 ":8) is not declared by this build; skipped"));
}

TEST(ProfileGenerator, MoreShapesThanTheLimitKeepTheMostCalled) {
  const fs::path dir = kiln_test::fresh_dir("profile_generator/limit");
  const std::string nm = "norms " + structure_of(&norms, "norms");
  std::string text = "kiln-profile 1\n";
  const int64_t total = kiln::compiler::kMaxProfiledSpecializations + 6;
  for (int64_t n = 1; n <= total; ++n)
    text += nm + " n=" + std::to_string(n) + " " + std::to_string(n) + "\n";
  const auto shapes =
      kiln::compiler::read_profiled_shapes({write_text(dir / "p.kprof", text)}, canonical_graphs());
  const auto& kept = shapes.by_graph.at("norms");
  ASSERT_EQ(kept.size(), kiln::compiler::kMaxProfiledSpecializations);
  EXPECT_EQ(kept.front().values, SymbolValues{7});  // 1..6 were called least
  EXPECT_EQ(kept.back().values, SymbolValues{total});
  ASSERT_EQ(shapes.warnings.size(), 1u);
  EXPECT_NE(shapes.warnings[0].find("graph 'norms': 70 profiled shapes; precompiling the 64 most "
                                    "called (7 calls or more), skipping 6"),
            std::string::npos)
      << shapes.warnings[0];
}

TEST(ProfileGenerator, AMalformedProfileFailsBeforeAnythingCompiles) {
  const fs::path dir = kiln_test::fresh_dir("profile_generator/malformed");
  auto o = options(dir);
  o.cxx = "/nonexistent/clang++";  // never reached
  o.profiles = {write_text(dir / "bad.kprof", "kiln-profile 1\nnorms abc 1\n")};
  try {
    kiln::compiler::run_generator(o, graphs());
    FAIL() << "no error";
  } catch (const kiln::profile::FormatError& e) {
    EXPECT_EQ(e.line(), 2u);
    EXPECT_NE(std::string(e.what()).find("bad.kprof:2: expected a structure hash"),
              std::string::npos)
        << e.what();
  }
  o.profiles = {dir / "missing.kprof"};
  try {
    kiln::compiler::run_generator(o, graphs());
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(
        std::string(e.what()).find("cannot read profile '" + (dir / "missing.kprof").string()),
        std::string::npos)
        << e.what();
  }
}

// Record with one build, precompile the profile with the next, and the
// recorded shapes hit static specializations of their own.
TEST(ProfileGenerator, RecordedShapesBecomeStaticSpecializationsThatHit) {
  const fs::path dir = kiln_test::fresh_dir("profile_generator/end_to_end");
  const auto traced = graphs();
  const kiln::ir::Graph& norms_graph = traced[0];
  const kiln::ir::Graph& rc_graph = traced[1];

  // 1. A build without a profile; a process records what it calls.
  const auto first = kiln::compiler::run_generator(options(dir), traced);
  const fs::path recorded = dir / "prod.kprof";
  {
    kiln::Package pkg = kiln::Package::open(first.package, {.profile_out = recorded});
    check_call(pkg, rc_graph, {3, 8}, "general");
    check_call(pkg, rc_graph, {3, 8}, "general");
    check_call(pkg, rc_graph, {5, 12}, "general");
    check_call(pkg, rc_graph, {2, 8}, "r=2,rest dynamic");
    check_call(pkg, norms_graph, {7}, "general");
    check_call(pkg, norms_graph, {4}, "n=4");
  }
  const std::string rc = "rows_cols " + structure_of(&rows_cols, "rows_cols");
  const std::string nm = "norms " + structure_of(&norms, "norms");
  EXPECT_EQ(kiln_test::slurp(recorded), "kiln-profile 1\n" + nm + " n=4 1\n" + nm + " n=7 1\n" +
                                            rc + " c=12 r=5 1\n" + rc + " c=8 r=2 1\n" + rc +
                                            " c=8 r=3 2\n");

  // 2. The next build takes it, plus a second profile with what no longer fits.
  const fs::path stale = write_text(dir / "stale.kprof", "kiln-profile 1\n" + rc +
                                                             " r=9000 c=8 4\n"
                                                             "rows_cols " +
                                                             std::string(32, 'a') + " r=1 c=4 2\n");
  auto o = options(dir);
  o.profiles = {recorded, stale};
  const auto second = kiln::compiler::run_generator(o, traced);
  EXPECT_EQ(second.warnings.size(), 2u) << testing::PrintToString(second.warnings);
  EXPECT_TRUE(has_warning(second.warnings, "r = 9000 is outside its declared range"));
  EXPECT_TRUE(has_warning(second.warnings, "graph 'rows_cols' changed since it was profiled"));

  // 3. Recorded shapes hit their own static specialization; others do not.
  kiln::Package pkg = kiln::Package::open(second.package);
  EXPECT_EQ(
      specialization_names(pkg, "rows_cols"),
      (std::vector<std::string>{"r=2,c=8", "r=3,c=8", "r=5,c=12", "r=2,rest dynamic", "general"}));
  EXPECT_EQ(specialization_names(pkg, "norms"),
            (std::vector<std::string>{"n=4", "n=7", "general"}));  // n=4 once
  check_call(pkg, rc_graph, {3, 8}, "r=3,c=8");
  check_call(pkg, rc_graph, {5, 12}, "r=5,c=12");
  check_call(pkg, rc_graph, {2, 8}, "r=2,c=8");
  check_call(pkg, norms_graph, {7}, "n=7");
  check_call(pkg, rc_graph, {3, 12}, "general");  // not a cross product of the tuples
  check_call(pkg, rc_graph, {2, 12}, "r=2,rest dynamic");
  EXPECT_EQ(pkg.graph("rows_cols").counters().hits, 5u);  // every call precompiled
  EXPECT_EQ(pkg.graph("rows_cols").counters().misses, 0u);

  // 4. Counts do not shape the package: the same shapes, counted again,
  // give the same bytes.
  const std::string bytes = kiln_test::slurp(second.package);
  {
    kiln::Package again = kiln::Package::open(second.package, {.profile_out = recorded});
    check_call(again, rc_graph, {5, 12}, "r=5,c=12");
  }
  EXPECT_NE(kiln_test::slurp(recorded).find(" c=12 r=5 2\n"), std::string::npos);
  EXPECT_EQ(kiln_test::slurp(kiln::compiler::run_generator(o, traced).package), bytes);
}

}  // namespace
