// Differential tests: random graphs (test_support/random_graph.h) compiled
// for the CPU and checked against the reference interpreter at two random
// size sets each. CI runs a fixed batch of seeds; KILN_DIFF_SEEDS=START:COUNT
// runs others. A failure prints the seed, the graph, the sizes and the worst
// element (docs/testing.md).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
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
// runtime's parallel chunks). KILN_DIFF_CPU_MATH=1: the CPU's own math rules
// (RandomGraphOptions::device_math off: tighter library-math bounds, exact
// quotients and square roots), other graphs than the GPU's.
kiln_test::RandomGraphOptions generator_options() {
  kiln_test::RandomGraphOptions o;
  if (const char* env = std::getenv("KILN_DIFF_MAX_NUMEL")) o.max_numel = std::stoll(env);
  if (const char* env = std::getenv("KILN_DIFF_CPU_MATH")) o.device_math = std::string(env) != "1";
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

// How close a batch came to its bounds: the largest |got - want| / allowed
// error of any element, by target and by the output's dtype, and its seed.
struct Closest {
  double ratio = 0;
  uint64_t seed = 0;
  void note(double r, uint64_t s) {
    if (r > ratio) {
      ratio = r;
      seed = s;
    }
  }
};

TEST(Differential, RandomGraphsMatchTheInterpreterOnTheCpu) {
  const std::vector<uint64_t> seeds = kiln_test::seeds_from_env(kFirstSeed, kSeedCount);
  std::vector<kiln_test::RandomGraph> rgs;
  std::vector<kiln::ir::Graph> graphs;
  std::vector<uint64_t> graph_seeds;
  for (uint64_t seed : seeds) {
    try {
      rgs.push_back(kiln_test::random_graph(seed, generator_options()));
      graphs.push_back(rgs.back().graph);
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
  std::map<std::string, Closest> closest;                          // by target
  std::map<std::string, std::map<std::string, Closest>> by_dtype;  // by target, output dtype
  // The same errors against the dtype's tolerance (tolerance_for), which
  // outputs were compared with before their own bounds: how much tighter
  // the bounds are.
  std::map<std::string, Closest> by_tolerance;
  // KILN_DIFF_RATIOS=FILE: one line per output and call, "seed target output
  // dtype exact|inexact ratio", to see how the ratios spread.
  FILE* ratio_log = nullptr;
  if (const char* path = std::getenv("KILN_DIFF_RATIOS")) ratio_log = std::fopen(path, "w");
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
        std::vector<double> ratios;
        const std::string mismatch = kiln_test::compare_outputs(rgs[i], got, call.want(), &ratios);
        for (size_t o = 0; o < ratios.size(); ++o) {
          closest[target].note(ratios[o], seed);
          if (ratio_log != nullptr) {
            std::fprintf(ratio_log, "%llu %s %zu %s %s %.6g\n",
                         static_cast<unsigned long long>(seed), target.c_str(), o,
                         std::string(kiln::dtype_name(call.want()[o].dtype)).c_str(),
                         rgs[i].bounds[o].exact ? "exact" : "inexact", ratios[o]);
          }
          const auto tol = kiln::compiler::tolerance_for(call.want()[o].dtype);
          for (size_t k = 0; k < call.want()[o].values.size(); ++k) {
            const double w = call.want()[o].values[k];
            const double e = std::fabs(got[o].values[k] - w);
            if (tol.atol > 0 && std::isfinite(e)) {
              by_tolerance[target].note(e / (tol.atol + tol.rtol * std::fabs(w)), seed);
            }
          }
          if (!rgs[i].bounds[o].exact) {
            by_dtype[target][std::string(kiln::dtype_name(call.want()[o].dtype))].note(ratios[o],
                                                                                       seed);
          }
        }
        EXPECT_TRUE(mismatch.empty())
            << kiln_test::failure_report(seed, target, g, sizes[s], mismatch);
        ++checks;
      }
    }
  }
  if (ratio_log != nullptr) std::fclose(ratio_log);
  EXPECT_EQ(checks, static_cast<int>(graphs.size() * kSizeSets * packages.size()));
  std::printf("differential: %zu graphs, %d checks\n", graphs.size(), checks);
  for (const auto& [target, c] : closest) {
    std::string line = "  " + target + ": closest to its bounds " + std::to_string(c.ratio) +
                       " (seed " + std::to_string(c.seed) + "); inexact outputs by dtype:";
    for (const auto& [dtype, d] : by_dtype[target]) {
      line +=
          " " + dtype + " " + std::to_string(d.ratio) + " (seed " + std::to_string(d.seed) + ")";
    }
    const Closest& t = by_tolerance[target];
    line += "; closest to the dtype's tolerance " + std::to_string(t.ratio) + " (seed " +
            std::to_string(t.seed) + ")";
    std::printf("%s\n", line.c_str());
  }
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
    // max, + and min of exact values: the interpreter's bits.
    EXPECT_EQ(kiln_test::compare_outputs(g, {kiln_test::ErrorBound{}}, {call.got(0)}, call.want()),
              "")
        << "n=" << n;
  }
}

// What a failure says: the worst element, with its index, of each output
// out of its bound, and the bound; integers and exact floats exactly; a NaN
// where a number is due.
TEST(Differential, MismatchesNameTheWorstElement) {
  const auto g = kiln::trace("report", [] {
    auto x = kiln::input("x", kiln::f32, {2, 3});
    auto i = kiln::input("i", kiln::i32, {3});
    return kiln::outputs(x * 2.0, i + i);
  });
  // out0 within 1e-5 + 1e-4 |want|, out1 (an integer) exactly.
  const std::vector<kiln_test::ErrorBound> bounds = {{1e-5, 1e-4, false}, {}};
  kiln::compiler::HostTensor f{kiln::DType::f32, {2, 3}, {1, 2, 3, 4, 5, 6}};
  kiln::compiler::HostTensor n{kiln::DType::i32, {3}, {1, 2, 3}};
  EXPECT_EQ(kiln_test::compare_outputs(g, bounds, {f, n}, {f, n}), "");
  auto close = f;
  close.values[4] += 1e-5;  // within 1e-5 + 1e-4 * 5
  std::vector<double> ratios;
  EXPECT_EQ(kiln_test::compare_outputs(g, bounds, {close, n}, {f, n}, &ratios), "");
  ASSERT_EQ(ratios.size(), 2u);
  EXPECT_NEAR(ratios[0], 1e-5 / 5.1e-4, 1e-6);
  EXPECT_EQ(ratios[1], 0);
  auto off = f;
  off.values[4] = 5.5;
  off.values[1] = 2.01;
  auto wrong_int = n;
  wrong_int.values[2] = 4;
  const std::string report = kiln_test::compare_outputs(g, bounds, {off, wrong_int}, {f, n});
  EXPECT_NE(report.find("output out0 (f32, shape [2, 3]): 2 of 6 elements out of bounds; "
                        "worst at [1, 1]: got 5.5, want 5, |diff| 0.5 vs bound 0.00051 (abs "
                        "1e-05 + rel 0.0001 * |want|, floor 5.96046448e-07)"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("output out1 (i32, shape [3]): 1 of 3 elements out of bounds; worst "
                        "at [2]: got 4, want 3, |diff| 1 vs 0 (exact)"),
            std::string::npos)
      << report;
  auto nan = f;
  nan.values[0] = NAN;
  EXPECT_NE(
      kiln_test::compare_outputs(g, bounds, {nan, n}, {f, n}).find("worst at [0, 0]: got nan"),
      std::string::npos);
  const std::string full = kiln_test::failure_report(7, "cpu:x86-64", g, {}, report);
  EXPECT_EQ(full.rfind("random graph seed 7 on cpu:x86-64, sizes {} (rerun alone: "
                       "KILN_DIFF_SEEDS=7:1)\n",
                       0),
            0u)
      << full;
  EXPECT_NE(full.find("%1 = input i : i32[3]"), std::string::npos) << full;

  // An exact float output: the interpreter's bits, a last-bit difference fails.
  auto last_bit = f;
  last_bit.values[2] = std::nextafter(3.0f, 4.0f);
  EXPECT_NE(
      kiln_test::compare_outputs(g, {{}, {}}, {last_bit, n}, {f, n})
          .find("worst at [0, 2]: got 3.00000024, want 3, |diff| 2.38418579e-07 vs 0 (exact)"),
      std::string::npos);
  // An inexact bound never allows less than the floor, one ulp of want
  // (2 u |want| + the smallest subnormal): a last-bit difference passes,
  // two ulps do not.
  const std::vector<kiln_test::ErrorBound> tight = {{0, 0, false}, {}};
  EXPECT_EQ(kiln_test::compare_outputs(g, tight, {last_bit, n}, {f, n}), "");
  auto two_bits = f;
  two_bits.values[2] = std::nextafter(std::nextafter(3.0f, 4.0f), 4.0f);
  EXPECT_NE(kiln_test::compare_outputs(g, tight, {two_bits, n}, {f, n}).find("1 of 6"),
            std::string::npos);
  EXPECT_EQ(kiln_test::allowed_error({0, 0, false}, kiln::DType::f32, 3), 6 * 0x1p-24 + 0x1p-149);
  EXPECT_EQ(kiln_test::allowed_error({1e-3, 0, false}, kiln::DType::f16, 0.5), 1e-3);
  EXPECT_EQ(kiln_test::allowed_error({1e-3, 0, true}, kiln::DType::f16, 0.5), 0);
  EXPECT_EQ(kiln_test::allowed_error({1e-3, 0, false}, kiln::DType::i64, 5), 0);
}

// The same seed gives the same graph and the same bounds, and graphs stay
// within the op budget.
TEST(Differential, GraphsAreReproducibleAndWithinTheBudget) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const kiln_test::RandomGraph rg = kiln_test::random_graph(seed);
    const kiln::ir::Graph& a = rg.graph;
    const kiln_test::RandomGraph again = kiln_test::random_graph(seed);
    EXPECT_EQ(kiln::ir::graph_to_string(a), kiln::ir::graph_to_string(again.graph)) << seed;
    ASSERT_EQ(rg.bounds.size(), a.outputs.size()) << seed;
    for (size_t o = 0; o < rg.bounds.size(); ++o) {
      EXPECT_EQ(rg.bounds[o].abs, again.bounds[o].abs) << seed;
      EXPECT_EQ(rg.bounds[o].rel, again.bounds[o].rel) << seed;
      EXPECT_EQ(rg.bounds[o].exact, again.bounds[o].exact) << seed;
      const kiln::DType t = a.node(a.outputs[o]).dtype;
      if (!kiln::dtype_is_float(t)) {
        EXPECT_TRUE(rg.bounds[o].exact) << seed;
      }
      // Within the dtype's tolerance (the generator's ceiling).
      const auto tol = kiln::compiler::tolerance_for(t);
      EXPECT_LE(rg.bounds[o].abs, tol.atol) << seed;
      EXPECT_LE(rg.bounds[o].rel, tol.rtol) << seed;
    }
    EXPECT_EQ(a.name, "rg_" + std::to_string(seed));
    EXPECT_GE(a.inputs.size(), 1u);
    EXPECT_LE(a.inputs.size(), 10u);
    EXPECT_GE(a.outputs.size(), 1u);
    EXPECT_LE(a.outputs.size(), 12u);  // the last value, 9 more, a copy and a constant
  }
}

// ---- coverage ---------------------------------------------------------------
// Which (op, dtype) pairs the graph API accepts, found by tracing the
// smallest graph of each op with operands of each dtype (where: its values;
// cast: its source, to every other dtype; ops without operands: their
// result) and catching kiln::TraceError. probe_graph knows how to call the
// public API for each ir::Op; an op it does not know fails the test.
struct Probe {
  kiln::ir::Op op;
  kiln::DType t;
  bool unknown = false;
};
thread_local Probe g_probe;

kiln::Outputs probe_graph() {
  using kiln::ir::Op;
  const kiln::DType t = g_probe.t;
  const kiln::Tensor x = kiln::input("x", t, {2, 2});
  const kiln::Tensor y = kiln::input("y", t, {2, 2});
  switch (g_probe.op) {
    case Op::input:
      return kiln::outputs(x);
    case Op::constant:
      return kiln::outputs(kiln::constant(1, t));
    case Op::neg:
      return kiln::outputs(kiln::neg(x));
    case Op::abs:
      return kiln::outputs(kiln::abs(x));
    case Op::exp:
      return kiln::outputs(kiln::exp(x));
    case Op::log:
      return kiln::outputs(kiln::log(x));
    case Op::sin:
      return kiln::outputs(kiln::sin(x));
    case Op::cos:
      return kiln::outputs(kiln::cos(x));
    case Op::tanh:
      return kiln::outputs(kiln::tanh(x));
    case Op::sigmoid:
      return kiln::outputs(kiln::sigmoid(x));
    case Op::relu:
      return kiln::outputs(kiln::relu(x));
    case Op::gelu:
      return kiln::outputs(kiln::gelu(x));
    case Op::sqrt:
      return kiln::outputs(kiln::sqrt(x));
    case Op::rsqrt:
      return kiln::outputs(kiln::rsqrt(x));
    case Op::square:
      return kiln::outputs(kiln::square(x));
    case Op::logical_not:
      return kiln::outputs(kiln::logical_not(x));
    case Op::cast: {
      std::vector<kiln::Tensor> outs;
      for (int k = 0; k < kiln::kDTypeCount; ++k) {
        if (static_cast<kiln::DType>(k) != t)
          outs.push_back(kiln::cast(x, static_cast<kiln::DType>(k)));
      }
      return kiln::Outputs(outs);
    }
    case Op::add:
      return kiln::outputs(kiln::add(x, y));
    case Op::sub:
      return kiln::outputs(kiln::sub(x, y));
    case Op::mul:
      return kiln::outputs(kiln::mul(x, y));
    case Op::div:
      return kiln::outputs(kiln::div(x, y));
    case Op::maximum:
      return kiln::outputs(kiln::maximum(x, y));
    case Op::minimum:
      return kiln::outputs(kiln::minimum(x, y));
    case Op::pow:
      return kiln::outputs(kiln::pow(x, y));
    case Op::eq:
      return kiln::outputs(kiln::eq(x, y));
    case Op::ne:
      return kiln::outputs(kiln::ne(x, y));
    case Op::lt:
      return kiln::outputs(kiln::lt(x, y));
    case Op::le:
      return kiln::outputs(kiln::le(x, y));
    case Op::gt:
      return kiln::outputs(kiln::gt(x, y));
    case Op::ge:
      return kiln::outputs(kiln::ge(x, y));
    case Op::where:
      return kiln::outputs(kiln::where(kiln::input("c", kiln::DType::boolean, {2, 2}), x, y));
    case Op::reduce_sum:
      return kiln::outputs(kiln::sum(x, 0));
    case Op::reduce_mean:
      return kiln::outputs(kiln::mean(x, 0));
    case Op::reduce_max:
      return kiln::outputs(kiln::max(x, 0));
    case Op::reduce_min:
      return kiln::outputs(kiln::min(x, 0));
    case Op::reduce_prod:
      return kiln::outputs(kiln::prod(x, 0));
    case Op::argmax:
      return kiln::outputs(kiln::argmax(x, 0));
    case Op::matmul:
      return kiln::outputs(kiln::matmul(x, y));
    case Op::reshape:
      return kiln::outputs(kiln::reshape(x, {4}));
    case Op::expand:
      return kiln::outputs(kiln::expand(kiln::input("z", t, {1, 2}), {2, 2}));
    case Op::permute:
      return kiln::outputs(kiln::permute(x, {1, 0}));
    case Op::slice:
      return kiln::outputs(kiln::slice(x, 0, 0, 1));
    case Op::concat:
      return kiln::outputs(kiln::concat({x, y}, 0));
    case Op::gather:
      return kiln::outputs(kiln::gather(x, kiln::input("i", kiln::DType::i64, {2}), 0));
    case Op::iota:
      return kiln::outputs(kiln::iota({2, 2}, 0, t));
  }
  g_probe.unknown = true;
  return kiln::outputs(x);
}

using OpDtype = std::pair<std::string, std::string>;

// What a node counts as: its op and the dtype of its operands.
OpDtype pair_of(const kiln::ir::Graph& g, const kiln::ir::Node& n) {
  kiln::DType t = n.dtype;
  if (n.op == kiln::ir::Op::where) {
    t = g.node(n.inputs.at(1)).dtype;
  } else if (!n.inputs.empty()) {
    t = g.node(n.inputs.front()).dtype;
  }
  return {std::string(kiln::ir::op_name(n.op)), std::string(kiln::dtype_name(t))};
}

std::set<OpDtype> accepted_pairs() {
  std::set<OpDtype> accepted;
  for (int i = 0;; ++i) {
    std::string name;
    try {
      name = std::string(kiln::ir::op_name(static_cast<kiln::ir::Op>(i)));
    } catch (const std::logic_error&) {
      break;
    }
    for (int k = 0; k < kiln::kDTypeCount; ++k) {
      g_probe = Probe{static_cast<kiln::ir::Op>(i), static_cast<kiln::DType>(k)};
      try {
        const kiln::ir::Graph g = kiln::trace("probe", &probe_graph);
        EXPECT_FALSE(g_probe.unknown)
            << "probe_graph does not know op " << name << ": add it (test_differential.cpp)";
        // The op itself must be in the graph (cast to the same dtype is none).
        bool found = false;
        for (const auto& n : g.nodes) found |= n.op == static_cast<kiln::ir::Op>(i);
        if (found)
          accepted.insert({name, std::string(kiln::dtype_name(static_cast<kiln::DType>(k)))});
      } catch (const kiln::TraceError&) {
      }
    }
  }
  return accepted;
}

// The live nodes of g: those some output depends on (the compiled graph and
// the comparison see no others).
std::vector<bool> live_nodes(const kiln::ir::Graph& g) {
  std::vector<bool> live(g.nodes.size(), false);
  std::vector<int32_t> stack(g.outputs.begin(), g.outputs.end());
  while (!stack.empty()) {
    const int32_t id = stack.back();
    stack.pop_back();
    if (live[static_cast<size_t>(id)]) continue;
    live[static_cast<size_t>(id)] = true;
    for (int32_t in : g.node(id).inputs) stack.push_back(in);
  }
  return live;
}

// The CI batch (the seeds RandomGraphsMatchTheInterpreterOnTheCpu runs)
// uses every (op, dtype) pair the graph API accepts in a live node: an op or
// a dtype rule the API gains needs the generator to follow
// (test_support/random_graph.cpp). It also reaches symbols, broadcast
// inputs and every rank up to 4.
TEST(Differential, CiSeedsCoverEveryOpAndDtype) {
  const std::set<OpDtype> accepted = accepted_pairs();
  ASSERT_FALSE(accepted.empty());
  std::set<OpDtype> seen;
  std::set<int> ranks;
  bool symbolic = false;
  bool broadcast_input = false;
  for (uint64_t seed = kFirstSeed; seed < kFirstSeed + kSeedCount; ++seed) {
    const kiln::ir::Graph g = kiln_test::random_graph(seed).graph;
    symbolic |= !g.symbols.empty();
    const std::vector<bool> live = live_nodes(g);
    for (size_t id = 0; id < g.nodes.size(); ++id) {
      if (!live[id]) continue;
      const auto& n = g.nodes[id];
      seen.insert(pair_of(g, n));
      ranks.insert(static_cast<int>(n.shape.size()));
      if (n.op == kiln::ir::Op::input) {
        for (const auto& d : n.shape) broadcast_input |= d.is_one();
      }
    }
  }
  std::string missing;
  int covered = 0;
  for (const auto& [op, dtype] : accepted) {
    if (seen.count({op, dtype})) {
      ++covered;
    } else {
      missing.append(" ").append(op).append("(").append(dtype).append(")");
    }
  }
  for (const auto& p : seen) {
    EXPECT_TRUE(accepted.count(p)) << "a random graph uses " << p.first << "(" << p.second
                                   << "), which the probe says the graph API rejects";
  }
  std::printf("coverage: %d of %zu (op, dtype) pairs the graph API accepts, in seeds %llu..%llu\n",
              covered, accepted.size(), static_cast<unsigned long long>(kFirstSeed),
              static_cast<unsigned long long>(kFirstSeed + kSeedCount - 1));
  EXPECT_TRUE(missing.empty()) << "no live node of the CI seeds has" << missing;
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
