// Differential tests: random graphs (test_support/random_graph.h) compiled
// for the CPU and checked against the reference interpreter at two random
// size sets each. CI runs a fixed batch of seeds; KILN_DIFF_SEEDS=START:COUNT
// runs others. A failure prints the seed, the graph, the sizes and the worst
// element (docs/testing.md).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/generator.h"
#include "kiln/compiler/interpreter.h"
#include "kiln/graph.h"
#include "kiln/runtime.h"
#include "test_support/random_call.h"
#include "test_support/random_graph.h"

namespace {

namespace fs = std::filesystem;

// The batch CI runs: seeds [kFirstSeed, kFirstSeed + kSeedCount).
constexpr uint64_t kFirstSeed = 1;
constexpr uint64_t kSeedCount = 40;
constexpr int kSizeSets = 2;

// The best CPU level this host runs, as a target name.
std::string host_cpu_target() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl")) {
    return "cpu:x86-64-v4";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("bmi2")) {
    return "cpu:x86-64-v3";
  }
  if (__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt")) {
    return "cpu:x86-64-v2";
  }
  return "cpu:x86-64";
}

// KILN_DIFF_MAX_NUMEL: larger tensors than CI's (slower; reaches the
// runtime's parallel chunks).
kiln_test::RandomGraphOptions generator_options() {
  kiln_test::RandomGraphOptions o;
  if (const char* env = std::getenv("KILN_DIFF_MAX_NUMEL")) o.max_numel = std::stoll(env);
  return o;
}

kiln::compiler::GeneratorOptions options(const std::string& target) {
  std::string dir_name = target;
  for (char& c : dir_name) {
    if (c == ':') c = '-';
  }
  const fs::path dir = fs::path(KILN_TEST_BINARY_DIR) / "differential" / dir_name;
  kiln::compiler::GeneratorOptions o;
  o.name = "diff";
  o.cpp_namespace = "diff";
  o.targets = {target};
  o.out_dir = dir / "out";
  o.work_dir = dir / "work";
  o.cxx = KILN_TEST_CLANGXX;
  o.ninja = KILN_TEST_NINJA;
  return o;
}

// Builds the package; where the whole batch fails to build, finds the
// graphs that fail on their own and reports their seeds.
std::optional<kiln::compiler::GeneratorSummary> build(const std::string& target,
                                                      const std::vector<kiln::ir::Graph>& graphs,
                                                      const std::vector<uint64_t>& seeds) {
  try {
    return kiln::compiler::run_generator(options(target), graphs);
  } catch (const std::exception& batch_error) {
    int found = 0;
    for (size_t i = 0; i < graphs.size(); ++i) {
      try {
        kiln::compiler::run_generator(options(target), {graphs[i]});
      } catch (const std::exception& e) {
        ++found;
        ADD_FAILURE() << "random graph seed " << seeds[i] << " does not build for " << target
                      << " (rerun alone: KILN_DIFF_SEEDS=" << seeds[i] << ":1): " << e.what()
                      << "\n"
                      << kiln::ir::graph_to_string(graphs[i]);
      }
    }
    if (found == 0)
      ADD_FAILURE() << "the batch does not build for " << target << ": " << batch_error.what();
    return std::nullopt;
  }
}

TEST(Differential, RandomGraphsMatchTheInterpreterOnTheCpu) {
  const std::vector<uint64_t> seeds = kiln_test::seeds_from_env(kFirstSeed, kSeedCount);
  std::vector<kiln::ir::Graph> graphs;
  std::vector<uint64_t> graph_seeds;
  for (uint64_t seed : seeds) {
    try {
      graphs.push_back(kiln_test::random_graph(seed, generator_options()));
      graph_seeds.push_back(seed);
      if (std::getenv("KILN_DIFF_PRINT") != nullptr) {
        std::printf("%s", kiln::ir::graph_to_string(graphs.back()).c_str());
      }
    } catch (const kiln::TraceError& e) {
      ADD_FAILURE() << "random graph seed " << seed << " does not trace: " << e.what();
    }
  }
  ASSERT_FALSE(graphs.empty());

  std::vector<std::string> targets = {"cpu:x86-64"};
  if (host_cpu_target() != targets.front()) targets.push_back(host_cpu_target());
  std::vector<std::pair<std::string, kiln::Package>> packages;
  for (const std::string& target : targets) {
    const auto summary = build(target, graphs, graph_seeds);
    if (!summary) continue;
    packages.emplace_back(target, kiln::Package::open(summary->package));
  }
  ASSERT_FALSE(packages.empty());

  int checks = 0;
  double closest = 0;  // the largest error / tolerance seen
  uint64_t closest_seed = 0;
  for (size_t i = 0; i < graphs.size(); ++i) {
    const kiln::ir::Graph& g = graphs[i];
    const uint64_t seed = graph_seeds[i];
    const auto sizes = kiln_test::random_sizes(g, seed, kSizeSets);
    for (size_t s = 0; s < sizes.size(); ++s) {
      kiln_test::RandomCall call(g, sizes[s], seed * 1000 + s);
      for (auto& [target, pkg] : packages) {
        call.poison_outputs();
        try {
          pkg.graph(g.name).call(call.inputs(), call.outputs());
        } catch (const std::exception& e) {
          ADD_FAILURE() << kiln_test::failure_report(seed, target, g, sizes[s],
                                                     std::string("call threw: ") + e.what() + "\n");
          continue;
        }
        std::vector<kiln::compiler::HostTensor> got;
        for (size_t o = 0; o < call.want().size(); ++o) got.push_back(call.got(o));
        double ratio = 0;
        const std::string mismatch = kiln_test::compare_outputs(g, got, call.want(), &ratio);
        if (ratio > closest) {
          closest = ratio;
          closest_seed = seed;
        }
        EXPECT_TRUE(mismatch.empty())
            << kiln_test::failure_report(seed, target, g, sizes[s], mismatch);
        ++checks;
      }
    }
  }
  EXPECT_EQ(checks, static_cast<int>(graphs.size() * kSizeSets * packages.size()));
  std::printf("differential: %zu graphs, %d checks; closest to tolerance: %.3g of it (seed %llu)\n",
              graphs.size(), checks, closest, static_cast<unsigned long long>(closest_seed));
}

// Regressions the random graphs found, each as the smallest graph that shows it.

// Seed 32 (first batch): two max/min reductions in successive loops of one
// row kernel each declared the lane counter `c0` in the row's scope, so the
// CPU kernel did not compile.
TEST(Differential, Seed32TwoMinMaxLoopsInOneRowKernel) {
  const auto g = kiln::trace("seed32", [] {
    auto n = kiln::sym("n", {.min = 1, .max = 64});
    auto x = kiln::input("x", kiln::f32, {n, 13});
    auto m = kiln::max(x, -1, true);
    return kiln::outputs(kiln::min(x + m, -1, false));
  });
  auto o = options("cpu:x86-64");
  o.out_dir = o.out_dir.parent_path() / "seed32" / "out";
  o.work_dir = o.work_dir.parent_path() / "seed32" / "work";
  kiln::Package pkg = kiln::Package::open(kiln::compiler::run_generator(o, {g}).package);
  for (int64_t n : {1, 5, 64}) {
    kiln_test::RandomCall call(g, n, static_cast<uint64_t>(n));
    pkg.graph("seed32").call(call.inputs(), call.outputs());
    EXPECT_EQ(kiln_test::compare_outputs(g, {call.got(0)}, call.want()), "") << "n=" << n;
  }
}

// What a failure says: the worst element, with its index, of each output
// out of tolerance; integers exactly; a NaN where a number is due.
TEST(Differential, MismatchesNameTheWorstElement) {
  const auto g = kiln::trace("report", [] {
    auto x = kiln::input("x", kiln::f32, {2, 3});
    auto i = kiln::input("i", kiln::i32, {3});
    return kiln::outputs(x * 2.0, i + i);
  });
  kiln::compiler::HostTensor f{kiln::DType::f32, {2, 3}, {1, 2, 3, 4, 5, 6}};
  kiln::compiler::HostTensor n{kiln::DType::i32, {3}, {1, 2, 3}};
  EXPECT_EQ(kiln_test::compare_outputs(g, {f, n}, {f, n}), "");
  auto close = f;
  close.values[4] += 1e-5;  // within 1e-5 + 1e-4 * 5
  EXPECT_EQ(kiln_test::compare_outputs(g, {close, n}, {f, n}), "");
  auto off = f;
  off.values[4] = 5.5;
  off.values[1] = 2.01;
  auto wrong_int = n;
  wrong_int.values[2] = 4;
  const std::string report = kiln_test::compare_outputs(g, {off, wrong_int}, {f, n});
  EXPECT_NE(report.find("output out0 (f32, shape [2, 3]): 2 of 6 elements out of tolerance; "
                        "worst at [1, 1]: got 5.5, want 5"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("output out1 (i32, shape [3]): 1 of 3 elements out of tolerance; worst "
                        "at [2]: got 4, want 3"),
            std::string::npos)
      << report;
  auto nan = f;
  nan.values[0] = NAN;
  EXPECT_NE(kiln_test::compare_outputs(g, {nan, n}, {f, n}).find("worst at [0, 0]: got nan"),
            std::string::npos);
  const std::string full = kiln_test::failure_report(7, "cpu:x86-64", g, {}, report);
  EXPECT_EQ(full.rfind("random graph seed 7 on cpu:x86-64, sizes {} (rerun alone: "
                       "KILN_DIFF_SEEDS=7:1)\n",
                       0),
            0u)
      << full;
  EXPECT_NE(full.find("%1 = input i : i32[3]"), std::string::npos) << full;
}

// The same seed gives the same graph, and graphs stay within the op budget.
TEST(Differential, GraphsAreReproducibleAndWithinTheBudget) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const kiln::ir::Graph a = kiln_test::random_graph(seed);
    EXPECT_EQ(kiln::ir::graph_to_string(a),
              kiln::ir::graph_to_string(kiln_test::random_graph(seed)))
        << seed;
    EXPECT_EQ(a.name, "rg_" + std::to_string(seed));
    EXPECT_GE(a.inputs.size(), 1u);
    EXPECT_LE(a.inputs.size(), 8u);
    EXPECT_GE(a.outputs.size(), 1u);
    EXPECT_LE(a.outputs.size(), 6u);
  }
}

// Over a few hundred seeds the generator uses every op of the IR: an op the
// graph API gains needs an entry in the op table (test_support/random_graph.cpp).
TEST(Differential, GeneratorCoversEveryOp) {
  std::set<std::string> seen;
  std::set<int> ranks;
  bool symbolic = false;
  bool broadcast_input = false;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    const kiln::ir::Graph g = kiln_test::random_graph(seed);
    symbolic |= !g.symbols.empty();
    for (const auto& n : g.nodes) {
      seen.insert(std::string(kiln::ir::op_name(n.op)));
      ranks.insert(static_cast<int>(n.shape.size()));
      if (n.op == kiln::ir::Op::input) {
        for (const auto& d : n.shape) broadcast_input |= d.is_one();
      }
    }
  }
  for (int i = 0;; ++i) {
    std::string name;
    try {
      name = std::string(kiln::ir::op_name(static_cast<kiln::ir::Op>(i)));
    } catch (const std::logic_error&) {
      break;
    }
    EXPECT_TRUE(seen.count(name)) << "no random graph uses op " << name;
  }
  EXPECT_TRUE(symbolic);
  EXPECT_TRUE(broadcast_input);
  for (int r = 0; r <= 4; ++r) EXPECT_TRUE(ranks.count(r)) << "rank " << r;
}

TEST(Differential, SeedsFromTheEnvironment) {
  const char* saved = std::getenv("KILN_DIFF_SEEDS");
  const std::string keep = saved != nullptr ? saved : "";
  ::setenv("KILN_DIFF_SEEDS", "100:3", 1);
  EXPECT_EQ(kiln_test::seeds_from_env(1, 40), (std::vector<uint64_t>{100, 101, 102}));
  ::setenv("KILN_DIFF_SEEDS", "7", 1);
  EXPECT_EQ(kiln_test::seeds_from_env(1, 40), (std::vector<uint64_t>{7}));
  ::setenv("KILN_DIFF_SEEDS", "x:1", 1);
  EXPECT_THROW(kiln_test::seeds_from_env(1, 40), std::invalid_argument);
  ::unsetenv("KILN_DIFF_SEEDS");
  EXPECT_EQ(kiln_test::seeds_from_env(1, 2), (std::vector<uint64_t>{1, 2}));
  if (saved != nullptr) ::setenv("KILN_DIFF_SEEDS", keep.c_str(), 1);
}

}  // namespace
