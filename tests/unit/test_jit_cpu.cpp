// The fallback JIT on the CPU end to end: a package that stores a graph's IR and no
// specialization, so every call misses; the JIT compiles with the real
// clang++, caches in memory and on disk, and its results match the reference
// interpreter on random inputs.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "cache_dir.h"
#include "cache_entry.h"
#include "disk_cache.h"
#include "kiln/compiler/hash.h"
#include "kiln/jit/cache_admin.h"
#include "kiln/jit/fallback_jit.h"
#include "kiln/support/process.h"
#include "test_support/blob_digests.h"
#include "test_support/jit_test_graph.h"
#include "test_support/scratch_files.h"

namespace {

namespace fs = std::filesystem;
using kiln::jit::FallbackJit;
using kiln::jit::JitOptions;

std::vector<fs::path> entries(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    // compilers/ holds the remembered `clang++ --version` lines, sizes/ the
    // symbols' size history, stats* the directory's counters, entry-mac.key
    // the key of the entries' MACs, CACHEDIR.TAG the marker: not entries.
    const std::string parent = e.path().parent_path().filename().string();
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && parent != "compilers" && parent != "sizes" &&
        !name.starts_with("stats") && name != kiln::jit::detail::kMacKeyFile &&
        name != kiln::jit::detail::kCacheDirTag) {
      out.push_back(e.path());
    }
  }
  return out;
}

// An executable script in `dir` (the JIT runs it with an argv, no shell of
// its own).
std::string script(const fs::path& dir, const std::string& name, const std::string& body) {
  const fs::path p = dir / name;
  std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
  fs::permissions(p, fs::perms::owner_all);
  return p.string();
}

class JitCpu : public ::testing::Test {
 protected:
  void SetUp() override {
    graph_ = kiln::trace("norms", &kiln_test::jit_norms);
    bytes_ = kiln_test::ir_only_package(graph_);
    package_.emplace(kiln::Package::open_memory(
        std::span(reinterpret_cast<const std::byte*>(bytes_.data()), bytes_.size())));
  }
  void TearDown() override { kiln::set_jit_compiler(nullptr); }

  // Registers `jit` with a freshly opened package: a package keeps what an
  // earlier JIT compiled for it, so a new JIT stands for a new process only
  // with a new package.
  void use(kiln::JitCompiler& jit) {
    package_.emplace(kiln::Package::open_memory(
        std::span(reinterpret_cast<const std::byte*>(bytes_.data()), bytes_.size())));
    kiln::set_jit_compiler(&jit);
  }

  // Calls the graph with n rows of random data and checks every output
  // against the interpreter.
  void call_and_check(int64_t n, uint64_t seed) {
    EXPECT_EQ(kiln_test::call_and_compare(*package_, graph_, n, seed), "");
  }

  kiln::ir::Graph graph_;
  std::vector<uint8_t> bytes_;
  std::optional<kiln::Package> package_;
};

// Reductions over other and several axes, prod, argmax and log_softmax: the
// IR goes through the package (multi-axis `axes`, the new ops by name) and
// back before the JIT lowers it.
kiln::Outputs jit_reductions() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096});
  auto x = kiln::input("x", kiln::bf16, {n, 6, 5});
  return kiln::outputs(kiln::sum(x, {0, 2}), kiln::argmax(x, 1), kiln::log_softmax(x, 0),
                       kiln::prod(x, -1, true), kiln::mean(x, kiln::all_axes(x), true),
                       kiln::max(kiln::cast(x, kiln::f32), {1, 2}));
}

TEST(JitCpuReductions, PackageRoundTripKeepsAxesAndNewOps) {
  const kiln::ir::Graph g = kiln::trace("reductions", &jit_reductions);
  // Multi-axis reductions are stored with axis -1 and their axes (a reader
  // from before `axes` refuses them instead of reducing one axis).
  const auto stored = kiln::compiler::ir_to_fb(g);
  int multi = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].axes.empty()) {
      EXPECT_EQ(stored->nodes[i]->axis, g.nodes[i].axis);
      continue;
    }
    ++multi;
    EXPECT_EQ(stored->nodes[i]->axis, -1);
    EXPECT_EQ(stored->nodes[i]->axes, g.nodes[i].axes);
  }
  EXPECT_EQ(multi, 3);  // sum over {0, 2}, mean over all, max over {1, 2}
  const std::vector<uint8_t> bytes = kiln_test::ir_only_package(g);
  kiln::Package pkg = kiln::Package::open_memory(
      std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .disk_cache = false});
  kiln::set_jit_compiler(&jit);
  // (n = 1 would make log_softmax over axis 0 all zeros, which the check refuses.)
  for (int64_t n : {2, 3, 70}) {
    EXPECT_EQ(kiln_test::call_and_compare(pkg, g, n, static_cast<uint64_t>(n)), "") << "n=" << n;
  }
  kiln::set_jit_compiler(nullptr);
  EXPECT_GE(jit.counters().compiles, 1u);
}

// Views and index ops through the package and back: the permutation in
// `axes`, the slice's bounds in `params`, concat's operands, gather's axis.
kiln::Outputs jit_shape_ops() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096});
  auto x = kiln::input("x", kiln::f32, {n, 6, 5});
  auto ids = kiln::input("ids", kiln::i64, {n});
  auto t = kiln::input("t", kiln::bf16, {12, 5});
  auto y = kiln::exp(x * 0.25);
  return kiln::outputs(kiln::reshape(y, {n, 30}), kiln::sum(kiln::reshape(y, {n, 30}), -1),
                       kiln::transpose(x, 0, 2), kiln::slice(x, 1, 1, -1, 2),
                       kiln::concat({x, y}, 2), kiln::embedding(t, ids - 5),
                       kiln::gather(x, ids - 3, 1), kiln::expand(kiln::sum(x, 0), {n, 6, 5}) - x,
                       kiln::iota({n, 5}, 0, kiln::i32) * kiln::iota({1, 5}, 1, kiln::i32));
}

TEST(JitCpuShapeOps, PackageRoundTripKeepsEveryShapeOp) {
  const kiln::ir::Graph g = kiln::trace("shape_ops", &jit_shape_ops);
  const auto stored = kiln::compiler::ir_to_fb(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    EXPECT_EQ(stored->nodes[i]->params, g.nodes[i].params);
    EXPECT_EQ(stored->nodes[i]->axes, g.nodes[i].axes);
    EXPECT_EQ(stored->nodes[i]->axis, g.nodes[i].axis);  // not -1: not a reduction's axes
  }
  const std::vector<uint8_t> bytes = kiln_test::ir_only_package(g);
  kiln::Package pkg = kiln::Package::open_memory(
      std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .disk_cache = false});
  kiln::set_jit_compiler(&jit);
  // (n = 1 would make the sum over n minus x, and the iota over n, all zeros.)
  for (int64_t n : {2, 3, 70}) {
    EXPECT_EQ(kiln_test::call_and_compare(pkg, g, n, static_cast<uint64_t>(n)), "") << "n=" << n;
  }
  kiln::set_jit_compiler(nullptr);
  EXPECT_GE(jit.counters().compiles, 1u);
}

// A package whose IR was damaged (by a bug or by hand) so that a shape op or
// a matmul no longer agrees with its operands: the JIT refuses it with a typed error
// naming the node and what it expected, and never compiles a kernel that
// would index out of bounds.
kiln::Outputs jit_damaged() {
  auto x = kiln::input("x", kiln::f32, {4, 5});
  auto i = kiln::input("i", kiln::i32, {3});
  // One statement each: node ids in this order (a concat may read the transpose).
  auto t = kiln::transpose(x, 0, 1);
  auto s = kiln::slice(x, 1, 1, 4);
  auto c = kiln::concat({x, x}, 0);
  auto gt = kiln::gather(x, i, 1);
  auto io = kiln::iota({4, 5}, 1);
  auto r = kiln::reshape(x, {2, 10});
  auto e = kiln::expand(x, {3, 4, 5});
  auto mm = kiln::matmul(x, t);
  return kiln::outputs(t, s, c, gt, io, r, e, mm);
}

TEST(JitCpuShapeOps, CorruptShapeOpsAreTypedErrorsNotKernels) {
  const kiln::ir::Graph g = kiln::trace("damaged", &jit_damaged);
  auto node_of = [&](size_t output) { return static_cast<size_t>(g.outputs.at(output)); };
  struct Damage {
    const char* what;
    std::function<void(kiln::fb::IrGraphT&)> apply;
    std::string expected;  // in the error's text
  };
  const std::string in = "kiln: graph 'damaged': cannot JIT: ";
  auto at = [&](size_t output, const std::string& op) {
    return in + "node " + std::to_string(node_of(output)) + " (" + op + "): ";
  };
  const std::vector<Damage> damages = {
      {"a permutation naming an axis twice",
       [&](auto& ir) {
         ir.nodes[node_of(0)]->axes = {1, 1};
       },
       at(0, "permute") + "expected a permutation of the 2 axes, got [1, 1]"},
      {"a permutation naming an axis out of range",
       [&](auto& ir) {
         ir.nodes[node_of(0)]->axes = {1, 7};
       },
       at(0, "permute") + "expected a permutation of the 2 axes, got [1, 7]"},
      {"a slice past the end",
       [&](auto& ir) {
         ir.nodes[node_of(1)]->params = {1, 9, 1};
       },
       at(1, "slice") + "expected 0 <= start < stop <= 5 and step >= 1, got 1:9:1"},
      {"a slice without its bounds", [&](auto& ir) { ir.nodes[node_of(1)]->params.clear(); },
       at(1, "slice") + "expected 3 params (start, stop, step), got 0"},
      {"a slice whose shape does not follow",
       [&](auto& ir) { ir.nodes[node_of(1)]->dims[1] = kiln::fb::Dim(5, -1); },
       at(1, "slice") + "expected shape [4, 3], got [4, 5]"},
      {"concat dims that differ",
       [&](auto& ir) { ir.nodes[node_of(2)]->inputs[1] = static_cast<int32_t>(node_of(0)); },
       at(2, "concat") + "expected operand 1 to match [4, 5] but along axis 0, got [5, 4]"},
      {"concat along an axis it does not have", [&](auto& ir) { ir.nodes[node_of(2)]->axis = 2; },
       at(2, "concat") + "expected an axis in [0, 2), got 2"},
      {"concat of nothing", [&](auto& ir) { ir.nodes[node_of(2)]->inputs.clear(); },
       in + "node " + std::to_string(node_of(2)) + " (concat) has 0 inputs, expected one or more"},
      {"gather indices of a float dtype",
       [&](auto& ir) {
         std::swap(ir.nodes[node_of(3)]->inputs[0], ir.nodes[node_of(3)]->inputs[1]);
         ir.nodes[node_of(3)]->axis = 0;
       },
       at(3, "gather") + "expected i32 or i64 indices, got f32"},
      {"a gather whose shape does not follow",
       [&](auto& ir) { ir.nodes[node_of(3)]->dims[1] = kiln::fb::Dim(4, -1); },
       at(3, "gather") + "expected shape [4, 3], got [4, 4]"},
      {"an iota along a missing axis", [&](auto& ir) { ir.nodes[node_of(4)]->axis = 2; },
       at(4, "iota") + "expected an axis in [0, 2), got 2"},
      {"a reshape that changes the element count",
       [&](auto& ir) { ir.nodes[node_of(5)]->dims[1] = kiln::fb::Dim(11, -1); },
       at(5, "reshape") + "expected as many elements as [4, 5], got [2, 11]"},
      {"an expand that does not broadcast",
       [&](auto& ir) { ir.nodes[node_of(6)]->dims[2] = kiln::fb::Dim(6, -1); },
       at(6, "expand") + "expected a shape [4, 5] broadcasts to, got [3, 4, 6]"},
      {"a matmul whose contracted dims differ",
       [&](auto& ir) { ir.nodes[node_of(7)]->inputs[1] = ir.nodes[node_of(7)]->inputs[0]; },
       at(7, "matmul") +
           "expected operands that multiply from operands [4, 5] and [4, 5], got [4, 4]"},
      {"a matmul whose shape does not follow",
       [&](auto& ir) { ir.nodes[node_of(7)]->dims[1] = kiln::fb::Dim(7, -1); },
       at(7, "matmul") + "expected shape [4, 4] from operands [4, 5] and [5, 4], got [4, 7]"},
  };
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.what);
    kiln::fb::ManifestT m;
    auto target = std::make_unique<kiln::fb::TargetT>();
    target->name = "cpu:x86-64";
    target->device = kiln::fb::DeviceKind::Cpu;
    target->arch = "x86-64";
    m.targets.push_back(std::move(target));
    m.graphs.push_back(kiln::compiler::graph_entry(g, kiln::compiler::structure_hash(g)));
    d.apply(*m.graphs[0]->ir);
    m.provenance = std::make_unique<kiln::fb::ProvenanceT>();
    m.provenance->kiln_version = "test";
    const std::vector<uint8_t> bytes = kiln::compiler::write_package(std::move(m), {});
    kiln::Package pkg = kiln::Package::open_memory(
        std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
    FallbackJit jit({.cxx = "/nonexistent/clang++", .disk_cache = false});
    kiln::set_jit_compiler(&jit);
    try {
      kiln_test::RandomCall call(g, 1, 1);
      pkg.graph("damaged").call(call.inputs(), call.outputs());
      ADD_FAILURE() << "the damaged package ran";
    } catch (const kiln::PackageError& e) {
      EXPECT_EQ(e.code(), kiln::ErrorCode::package_corrupt);
      EXPECT_EQ(std::string(e.what()), d.expected);
    }
    kiln::set_jit_compiler(nullptr);
    EXPECT_EQ(jit.counters().compiles, 0u);
  }
}

TEST_F(JitCpu, MissCompilesThenTheSameCallHits) {
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .disk_cache = false});
  use(jit);
  call_and_check(5, 1);
  EXPECT_EQ(jit.counters().compiles, 1u);
  EXPECT_GT(jit.counters().compile_ns, 0u);
  // The runtime keeps what the JIT compiled: the same shapes are a hit that
  // never reaches the JIT.
  call_and_check(5, 2);
  EXPECT_EQ(jit.counters().compiles, 1u);
  EXPECT_EQ(jit.counters().requests, 1u);
  // Another size is another static specialization.
  call_and_check(70, 3);
  EXPECT_EQ(jit.counters().compiles, 2u);
  EXPECT_EQ(jit.counters().requests, 2u);
  const kiln::GraphCounters c = package_->graph("norms").counters();
  EXPECT_EQ(c.calls, 3u);
  EXPECT_EQ(c.misses, 2u);
  EXPECT_EQ(c.jit_served, 2u);
  EXPECT_EQ(c.jit_hits, 1u);
  EXPECT_EQ(c.hits, 0u);
}

TEST_F(JitCpu, AfterTwoSizesOfASymbolOneDynamicCompileServesEveryOtherSize) {
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .disk_cache = false});
  use(jit);
  call_and_check(5, 20);
  call_and_check(6, 21);
  EXPECT_EQ(jit.counters().compiles, 2u);  // n=5 and n=6, static
  call_and_check(7, 22);
  EXPECT_EQ(jit.counters().compiles, 3u);  // dynamic n
  for (int64_t n : {1, 300, 4096, 5, 6}) call_and_check(n, 23 + static_cast<uint64_t>(n));
  EXPECT_EQ(jit.counters().compiles, 3u);
  EXPECT_EQ(jit.counters().requests, 3u);
  EXPECT_EQ(package_->graph("norms").counters().jit_hits, 5u);
}

TEST_F(JitCpu, AFreshJitOnTheSameCacheDirLoadsFromDiskWithoutCompiling) {
  const fs::path dir = kiln_test::fresh_dir("jit/disk_hit");
  {
    FallbackJit first({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir});
    use(first);
    call_and_check(9, 4);
    EXPECT_EQ(first.counters().compiles, 1u);
    EXPECT_EQ(first.counters().disk_hits, 0u);
  }
  const auto files = entries(dir);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].extension(), ".kjit");
  // A new JitCompiler has an empty memory cache, as a new process does.
  FallbackJit second({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir});
  use(second);
  call_and_check(9, 5);
  EXPECT_EQ(second.counters().compiles, 0u);
  EXPECT_EQ(second.counters().disk_hits, 1u);
}

TEST_F(JitCpu, CorruptOrTruncatedEntryIsAMissThenRecompiledAndRewritten) {
  const fs::path dir = kiln_test::fresh_dir("jit/corrupt");
  {
    FallbackJit first({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir});
    use(first);
    call_and_check(3, 6);
  }
  const fs::path entry = entries(dir).at(0);
  const auto size = fs::file_size(entry);
  for (const char* damage : {"flip", "truncate"}) {
    if (std::string(damage) == "flip") {
      std::fstream f(entry, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(size / 2));
      const char c = static_cast<char>(f.get());
      f.seekp(static_cast<std::streamoff>(size / 2));
      f.put(static_cast<char>(c ^ 0x5A));
    } else {
      fs::resize_file(entry, size / 3);
    }
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir});
    use(jit);
    call_and_check(3, 7);
    EXPECT_EQ(jit.counters().corrupt_entries, 1u) << damage;
    EXPECT_EQ(jit.counters().compiles, 1u) << damage;
    EXPECT_EQ(fs::file_size(entry), size) << damage << ": the entry was rewritten whole";
  }
  FallbackJit after({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir});
  use(after);
  call_and_check(3, 8);
  EXPECT_EQ(after.counters().disk_hits, 1u);
}

TEST_F(JitCpu, EightThreadsMissingOneKeyShareOneCompile) {
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .disk_cache = false});
  use(jit);
  std::barrier start(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      call_and_check(33, 100 + static_cast<uint64_t>(t));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(jit.counters().compiles, 1u);
  EXPECT_EQ(jit.counters().memory_hits, 7u);
}

// Each failing compiler: a typed error carrying what it said, a failure
// counted, and nothing in the cache; a later good compiler then succeeds.
TEST_F(JitCpu, FailingKilledOrMissingCompilerIsATypedErrorAndCachesNothing) {
  const fs::path dir = kiln_test::fresh_dir("jit/failing");
  const fs::path cache = dir / "cache";
  const std::string real = KILN_TEST_CLANGXX;
  struct Case {
    std::string cxx;
    int exit_code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"/bin/false", 1, "--version' exited with status 1"},
      {script(dir, "fails.sh",
              "if [ \"$1\" = --version ]; then exec '" + real +
                  "' --version; fi\n"
                  "echo 'error: the disk is on fire' >&2; exit 3"),
       3, "the disk is on fire"},
      {script(dir, "killed.sh",
              "if [ \"$1\" = --version ]; then exec '" + real +
                  "' --version; fi\n"
                  "kill -9 $$"),
       128 + 9, "was killed by signal 9"},
      {(dir / "no-such-clang++").string(), -1, "cannot run"},
  };
  for (const Case& c : cases) {
    FallbackJit jit({.cxx = c.cxx, .cache_dir = cache});
    use(jit);
    try {
      call_and_check(4, 9);
      ADD_FAILURE() << c.cxx << ": no error";
    } catch (const kiln::jit::JitCompileError& e) {
      EXPECT_EQ(e.code(), kiln::ErrorCode::jit_compile_failed);
      EXPECT_EQ(e.exit_code(), c.exit_code) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("graph 'norms'"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(entries(cache).empty()) << c.cxx;
    EXPECT_EQ(jit.counters().compiles, 0u);
  }
  FallbackJit good({.cxx = real, .cache_dir = cache});
  use(good);
  call_and_check(4, 10);
  EXPECT_EQ(good.counters().compiles, 1u);
  EXPECT_EQ(entries(cache).size(), 1u);
}

// With a cap the least recently used entries go after each store; the entry
// just stored stays.
TEST_F(JitCpu, ACappedDiskCacheEvictsTheLeastRecentlyUsedEntry) {
  const fs::path dir = kiln_test::fresh_dir("jit/capped");
  {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir});
    use(jit);
    call_and_check(5, 30);
  }
  const uint64_t one_entry = kiln::jit::cache_stats(dir).bytes;
  ASSERT_GT(one_entry, 0u);
  // Room for one entry and a half: storing the second evicts the first.
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir, .max_size = one_entry * 3 / 2});
  use(jit);
  call_and_check(6, 31);
  EXPECT_EQ(jit.counters().evictions, 1u);
  EXPECT_EQ(kiln::jit::cache_stats(dir).entries, 1u);
  FallbackJit later({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir});
  use(later);
  call_and_check(6, 32);  // the entry kept is n=6's
  EXPECT_EQ(later.counters().disk_hits, 1u);
  call_and_check(5, 33);
  EXPECT_EQ(later.counters().compiles, 1u);
}

// A long-running server meets ever new shapes: the JIT keeps at most
// max_memory_entries specializations loaded, evicting the least recently
// used, and a request for an evicted one compiles (or loads) it again. The
// runtime caps what each graph adopted at the same count (the next tests).
TEST_F(JitCpu, AMemoryCapEvictsTheLeastRecentlyUsedAndTheNextCallReloadsIt) {
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX,
                   .disk_cache = false,
                   .dynamic_after = 8,  // every size below its own static specialization
                   .max_memory_entries = 2});
  use(jit);
  call_and_check(3, 40);
  call_and_check(5, 41);
  EXPECT_EQ(jit.counters().memory_evictions, 0u);
  call_and_check(7, 42);
  EXPECT_EQ(jit.counters().compiles, 3u);
  EXPECT_EQ(jit.counters().memory_entries, 2u);
  EXPECT_EQ(jit.counters().memory_evictions, 1u);  // n=3's
  // The package dropped n=3's code too, at the same cap.
  EXPECT_EQ(package_->graph("norms").counters().jit_evictions, 1u);
  EXPECT_EQ(jit.counters().requests, 3u);

  // A new package of the same bytes adopted nothing, so each size asks the
  // JIT: n=7's is in memory, n=3's was evicted and compiles again, which
  // evicts n=5's, now the least recently used.
  use(jit);
  call_and_check(7, 44);
  EXPECT_EQ(jit.counters().memory_hits, 1u);
  EXPECT_EQ(jit.counters().compiles, 3u);
  call_and_check(3, 45);
  EXPECT_EQ(jit.counters().compiles, 4u);
  EXPECT_EQ(jit.counters().memory_evictions, 2u);
  EXPECT_EQ(jit.counters().memory_entries, 2u);
  call_and_check(7, 46);  // a jit hit in this package: not a request
  use(jit);
  call_and_check(5, 47);  // evicted: a compile
  call_and_check(3, 48);  // kept: a memory hit
  EXPECT_EQ(jit.counters().compiles, 5u);
  EXPECT_EQ(jit.counters().memory_hits, 2u);
  EXPECT_EQ(jit.counters().memory_evictions, 3u);  // n=7's
  EXPECT_EQ(jit.counters().memory_entries, 2u);
}

// A graph keeps at most max_memory_entries of the JIT's specializations,
// evicting the one its calls ran least recently (the JIT sees only its own
// requests, so the two may drop different ones); a call with an evicted
// shape asks the JIT again.
TEST_F(JitCpu, AGraphKeepsAtMostTheCapOfJitSpecializationsEvictingTheLeastRecentlyRun) {
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX,
                   .disk_cache = false,
                   .dynamic_after = 8,  // every size below its own static specialization
                   .max_memory_entries = 2});
  use(jit);
  const kiln::Graph& graph = package_->graph("norms");
  call_and_check(3, 60);
  call_and_check(5, 61);
  EXPECT_EQ(graph.counters().jit_evictions, 0u);
  call_and_check(7, 62);  // the graph drops n=3's
  EXPECT_EQ(graph.counters().jit_evictions, 1u);
  call_and_check(5, 63);  // a jit hit: n=7's is now the least recently run
  EXPECT_EQ(jit.counters().requests, 3u);
  call_and_check(3, 64);  // asks the JIT, which evicted it too: a compile
  EXPECT_EQ(jit.counters().requests, 4u);
  EXPECT_EQ(jit.counters().compiles, 4u);
  EXPECT_EQ(graph.counters().jit_evictions, 2u);  // n=7's
  call_and_check(5, 65);                          // still kept by the graph (the JIT dropped it)
  EXPECT_EQ(jit.counters().requests, 4u);
  call_and_check(7, 66);  // the JIT still holds n=7's: a memory hit
  EXPECT_EQ(jit.counters().requests, 5u);
  EXPECT_EQ(jit.counters().memory_hits, 1u);
  EXPECT_EQ(jit.counters().compiles, 4u);
  const kiln::GraphCounters c = graph.counters();
  EXPECT_EQ(c.jit_evictions, 3u);  // n=3's again
  EXPECT_EQ(c.calls, 7u);
  EXPECT_EQ(c.jit_hits, 2u);
  EXPECT_EQ(c.misses, 5u);
  EXPECT_EQ(c.jit_served, 5u);
}

// Threads running different shapes at once under a cap of 1 evict each
// other's specializations while those run: each call holds its own, so
// every result is right.
TEST_F(JitCpu, ThreadsEvictingEachOthersSpecializationsAllGetRightResults) {
  const fs::path dir = kiln_test::fresh_dir("jit/adopted_cap");
  FallbackJit jit(
      {.cxx = KILN_TEST_CLANGXX, .cache_dir = dir, .dynamic_after = 8, .max_memory_entries = 1});
  use(jit);
  constexpr int kThreads = 4;
  constexpr int kRounds = 6;
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int round = 0; round < kRounds; ++round) {
        call_and_check(3 + 2 * t, static_cast<uint64_t>(200 + kRounds * t + round));
      }
    });
  }
  for (auto& t : threads) t.join();
  const kiln::GraphCounters c = package_->graph("norms").counters();
  EXPECT_EQ(c.calls, static_cast<uint64_t>(kThreads * kRounds));
  EXPECT_EQ(c.jit_hits + c.misses, c.calls);
  EXPECT_EQ(c.jit_served, c.misses);
  // Each shape was adopted at least once and at most one is kept.
  EXPECT_GE(c.jit_evictions, static_cast<uint64_t>(kThreads - 1));
  EXPECT_LE(c.jit_evictions, c.jit_served);
  EXPECT_EQ(jit.counters().compiles, static_cast<uint64_t>(kThreads));
}

// The IR the JIT reads from packages is held up to the same cap: a server
// opening package after package (here: two graphs of one package) keeps
// the most recently requested, and a dropped one is read again when asked.
TEST(JitCpuGraphs, TheGraphsIrIsHeldUpToTheMemoryCap) {
  const kiln::ir::Graph first = kiln::trace("norms", &kiln_test::jit_norms);
  const kiln::ir::Graph second = kiln::trace("norms_again", &kiln_test::jit_norms);
  const std::vector<uint8_t> bytes = kiln_test::ir_only_package({first, second});
  FallbackJit jit(
      {.cxx = KILN_TEST_CLANGXX, .disk_cache = false, .dynamic_after = 8, .max_memory_entries = 1});
  kiln::set_jit_compiler(&jit);
  kiln::Package pkg = kiln::Package::open_memory(
      std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
  EXPECT_EQ(kiln_test::call_and_compare(pkg, first, 3, 70), "");
  EXPECT_EQ(jit.counters().graph_irs, 1u);
  EXPECT_EQ(kiln_test::call_and_compare(pkg, second, 3, 71), "");
  EXPECT_EQ(jit.counters().graph_irs, 1u);  // the first graph's IR was dropped
  EXPECT_EQ(kiln_test::call_and_compare(pkg, first, 5, 72), "");  // read again
  EXPECT_EQ(jit.counters().graph_irs, 1u);
  EXPECT_EQ(jit.counters().compiles, 3u);
  kiln::set_jit_compiler(nullptr);

  FallbackJit unbounded({.cxx = KILN_TEST_CLANGXX, .disk_cache = false, .dynamic_after = 8});
  kiln::set_jit_compiler(&unbounded);
  kiln::Package again = kiln::Package::open_memory(
      std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
  EXPECT_EQ(kiln_test::call_and_compare(again, first, 3, 73), "");
  EXPECT_EQ(kiln_test::call_and_compare(again, second, 3, 74), "");
  EXPECT_EQ(unbounded.counters().graph_irs, 2u);
  kiln::set_jit_compiler(nullptr);
}

// With the disk cache on, an evicted specialization comes back from disk.
TEST_F(JitCpu, AnEvictedSpecializationReloadsFromTheDiskCache) {
  const fs::path dir = kiln_test::fresh_dir("jit/memory_cap");
  FallbackJit jit(
      {.cxx = KILN_TEST_CLANGXX, .cache_dir = dir, .dynamic_after = 8, .max_memory_entries = 1});
  use(jit);
  call_and_check(3, 50);
  call_and_check(5, 51);
  EXPECT_EQ(jit.counters().memory_evictions, 1u);
  EXPECT_EQ(jit.counters().memory_entries, 1u);
  use(jit);
  call_and_check(3, 52);
  EXPECT_EQ(jit.counters().compiles, 2u);
  EXPECT_EQ(jit.counters().disk_hits, 1u);
  EXPECT_EQ(jit.counters().memory_evictions, 2u);
}

TEST_F(JitCpu, CacheStatsPruneClearAndTheKilnCacheCommand) {
  const fs::path dir = kiln_test::fresh_dir("jit/admin");
  {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir});
    use(jit);
    call_and_check(5, 40);
    call_and_check(6, 41);
  }
  const fs::path dead_writer = dir / "ab" / ("ab" + std::string(30, '0') + ".kjit.tmp.1.0");
  fs::create_directories(dead_writer.parent_path());
  std::ofstream(dead_writer) << "left by a writer that died";
  fs::last_write_time(dead_writer, fs::file_time_type::clock::now() - std::chrono::hours(2));
  kiln::jit::CacheStats s = kiln::jit::cache_stats(dir);
  EXPECT_EQ(s.entries, 2u);
  EXPECT_EQ(s.temp_files, 1u);
  const kiln::support::ProcessResult stats =
      kiln::support::run_process({KILN_TEST_KILN_CLI, "cache", "stats", "--dir", dir.string()});
  EXPECT_EQ(stats.exit_code, 0) << stats.output;
  EXPECT_NE(stats.output.find("entries: 2\n"), std::string::npos) << stats.output;
  EXPECT_NE(stats.output.find("bytes: " + std::to_string(s.bytes) + "\n"), std::string::npos)
      << stats.output;
  // The JIT's outcomes, kept with the directory for every process.
  EXPECT_EQ(s.counters["compiles"], 2u);
  EXPECT_GT(s.counters["compile_ns"], 0u);
  EXPECT_NE(stats.output.find("compiles: 2\n"), std::string::npos) << stats.output;
  EXPECT_NE(stats.output.find("disk hits: 0\n"), std::string::npos) << stats.output;
  {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir});
    use(jit);
    call_and_check(5, 42);
  }
  EXPECT_EQ(kiln::jit::cache_stats(dir).counters["disk_hits"], 1u);
  // A cap below one entry: both go, and the stale temp file.
  const kiln::support::ProcessResult prune = kiln::support::run_process(
      {KILN_TEST_KILN_CLI, "cache", "prune", "--dir", dir.string(), "--max-size", "1K"});
  EXPECT_EQ(prune.exit_code, 0) << prune.output;
  EXPECT_NE(prune.output.find("removed 2 entries; 0 entries, 0 bytes remain"), std::string::npos)
      << prune.output;
  s = kiln::jit::cache_stats(dir);
  EXPECT_EQ(s.entries + s.temp_files, 0u);
  const kiln::support::ProcessResult bad = kiln::support::run_process(
      {KILN_TEST_KILN_CLI, "cache", "prune", "--dir", dir.string(), "--max-size", "12x"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("got '12x'"), std::string::npos) << bad.output;

  {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir});
    use(jit);
    call_and_check(7, 42);
  }
  const kiln::support::ProcessResult clear =
      kiln::support::run_process({KILN_TEST_KILN_CLI, "cache", "clear", "--dir", dir.string()});
  EXPECT_EQ(clear.exit_code, 0) << clear.output;
  EXPECT_NE(clear.output.find("removed 1 entries"), std::string::npos) << clear.output;
  EXPECT_TRUE(entries(dir).empty());
  EXPECT_FALSE(fs::exists(dir / "compilers"));

  EXPECT_EQ(kiln::jit::parse_cache_size("64M"), uint64_t{64} << 20);
  EXPECT_EQ(kiln::jit::parse_cache_size("1048576"), 1048576u);
  EXPECT_EQ(kiln::jit::parse_cache_size("2g"), uint64_t{2} << 30);
  for (const char* text : {"", "M", "-1", "1.5G", "99999999999999999999"}) {
    try {
      kiln::jit::parse_cache_size(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const kiln::Error& e) {
      EXPECT_EQ(e.code(), kiln::ErrorCode::invalid_argument);
    }
  }
}

// Files the cache appends to or locks, replaced by symlinks to files outside
// it: a run neither writes through them nor creates what they point at.
TEST_F(JitCpu, SymlinksPlantedInTheCacheAreNeverWrittenThrough) {
  const fs::path dir = kiln_test::fresh_dir("jit/planted_links");
  const fs::path cache = dir / "cache";
  {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = cache});
    use(jit);
    call_and_check(5, 90);
  }
  const fs::path victim = dir / "victim.txt";
  std::ofstream(victim) << "not the cache's\n";
  std::vector<fs::path> history;
  for (const auto& e : fs::directory_iterator(cache / "sizes")) history.push_back(e.path());
  ASSERT_FALSE(history.empty());
  for (const fs::path& h : history) {
    fs::remove(h);
    fs::create_symlink(victim, h);
  }
  fs::remove(cache / "stats.lock");
  fs::create_symlink(dir / "created_through_a_link", cache / "stats.lock");
  {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = cache});
    use(jit);
    call_and_check(6, 91);  // a new size: appended to the size history
    EXPECT_EQ(jit.counters().compiles, 1u);
  }
  EXPECT_EQ(kiln_test::slurp(victim), "not the cache's\n");
  EXPECT_FALSE(fs::exists(dir / "created_through_a_link"));
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

// The error a FallbackJit on `cache` is refused with ("" when it is not).
std::string refusal(const fs::path& cache) {
  try {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = cache});
    return "";
  } catch (const kiln::jit::CacheDirError& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::cache_untrusted);
    return e.what();
  }
}

// Every directory the JIT makes is 0700 and every file 0600: entries are
// code this user runs.
TEST_F(JitCpu, TheCacheIsMade0700AndItsFiles0600) {
  const fs::path dir = kiln_test::fresh_dir("jit/modes");
  const fs::path cache = dir / "made" / "by_kiln";
  {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = cache});
    use(jit);
    call_and_check(5, 92);
    EXPECT_EQ(jit.counters().compiles, 1u);
  }
  EXPECT_EQ(mode_of(dir / "made"), 0700u);
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(cache)) {
    EXPECT_EQ(mode_of(e.path()), e.is_directory() ? 0700u : 0600u) << e.path();
    files += e.is_regular_file() ? 1 : 0;
  }
  EXPECT_GE(files, 4u);  // entry, compiler memo, size history, stats
  EXPECT_EQ(mode_of(cache), 0700u);
}

// A cache directory an older Kiln made 0755 (no one else could write it) is
// closed to 0700 and used; one others may write is refused, naming the
// chmod to run once it has been checked.
TEST_F(JitCpu, ALooseCacheDirectoryIsClosedOrRefused) {
  const fs::path dir = kiln_test::fresh_dir("jit/loose");
  fs::create_directories(dir / "old");
  ASSERT_EQ(::chmod((dir / "old").c_str(), 0755), 0);
  EXPECT_EQ(refusal(dir / "old"), "");
  EXPECT_EQ(mode_of(dir / "old"), 0700u);

  fs::create_directories(dir / "shared");
  ASSERT_EQ(::chmod((dir / "shared").c_str(), 0777), 0);
  const std::string why = refusal(dir / "shared");
  EXPECT_NE(why.find("'" + (dir / "shared").string() + "' is owned by uid " +
                     std::to_string(::geteuid()) + ", mode 0777: others may write it"),
            std::string::npos)
      << why;
  EXPECT_NE(why.find("chmod 0700 " + (dir / "shared").string()), std::string::npos) << why;
  EXPECT_EQ(mode_of(dir / "shared"), 0777u);  // left as it was

  // A directory above the cache that others may write (and not sticky):
  // they could swap the cache for their own.
  fs::create_directories(dir / "open");
  ASSERT_EQ(::chmod((dir / "open").c_str(), 0777), 0);
  const std::string above = refusal(dir / "open" / "cache");
  EXPECT_NE(above.find("'" + (dir / "open").string() + "' above"), std::string::npos) << above;
  EXPECT_FALSE(fs::exists(dir / "open" / "cache"));
  // With the sticky bit, as /tmp has, no one can rename another's entry.
  ASSERT_EQ(::chmod((dir / "open").c_str(), 01777), 0);
  EXPECT_EQ(refusal(dir / "open" / "cache"), "");
}

// A cache directory that cannot be made (here under /proc, where no one
// may make one) is no reason to refuse: the JIT runs without its disk
// cache, as when a store fails.
TEST_F(JitCpu, ACacheDirectoryThatCannotBeMadeTurnsTheDiskCacheOff) {
  testing::internal::CaptureStderr();
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = "/proc/kiln-no-cache/jit"});
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("cannot create '/proc/kiln-no-cache'"), std::string::npos) << said;
  EXPECT_NE(said.find("the disk cache is off"), std::string::npos) << said;
  EXPECT_TRUE(jit.cache_dir().empty());
  use(jit);
  call_and_check(5, 100);
  EXPECT_EQ(jit.counters().compiles, 1u);
  EXPECT_EQ(jit.counters().bypass_disk_off, 1u);
}

// Another user's directory or symlink on the way: refused, naming the
// path, its owner and mode. A symlink the user made to a directory of their
// own is followed, and the cache is the directory it points at. (Needs
// root, to give files to another user.)
TEST_F(JitCpu, AnotherUsersCacheDirectoryOrSymlinkIsRefused) {
  const fs::path dir = kiln_test::fresh_dir("jit/foreign");
  fs::create_directories(dir / "mine");
  fs::create_symlink(dir / "mine", dir / "my_link");
  {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir / "my_link"});
    EXPECT_EQ(jit.cache_dir(), dir / "mine");
  }
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown to another user";
  constexpr uid_t kOther = 65534;
  fs::create_directories(dir / "theirs");
  ASSERT_EQ(::chmod((dir / "theirs").c_str(), 0700), 0);
  ASSERT_EQ(::chown((dir / "theirs").c_str(), kOther, kOther), 0);
  std::string why = refusal(dir / "theirs");
  EXPECT_NE(why.find("'" + (dir / "theirs").string() +
                     "' is owned by uid 65534, mode 0700, "
                     "expected this user (uid 0)"),
            std::string::npos)
      << why;
  fs::create_symlink(dir / "mine", dir / "their_link");
  ASSERT_EQ(::lchown((dir / "their_link").c_str(), kOther, kOther), 0);
  why = refusal(dir / "their_link" / "cache");
  EXPECT_NE(why.find("symlink '" + (dir / "their_link").string() + "'"), std::string::npos) << why;
  EXPECT_NE(why.find("owned by uid 65534"), std::string::npos) << why;
  EXPECT_FALSE(fs::exists(dir / "mine" / "cache"));
}

// The shared object in a cache entry replaced by one whose constructor
// leaves a file, with the entry's checksum recomputed (all but the MAC, which
// needs the cache's key): the JIT never loads it, so the constructor never
// runs; it counts an untrusted entry, recompiles and rewrites it.
TEST_F(JitCpu, AnEntryWithForgedCodeAndARecomputedChecksumIsNeverLoaded) {
  namespace jd = kiln::jit::detail;
  const fs::path dir = kiln_test::fresh_dir("jit/forged");
  const fs::path cache = dir / "cache";
  {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = cache});
    use(jit);
    call_and_check(5, 93);
  }
  const fs::path ran = dir / "constructor_ran";
  std::ofstream(dir / "planted.cpp")
      << "#include <cstdio>\n"
      << "__attribute__((constructor)) static void planted() {\n"
      << "  if (FILE* f = std::fopen(\"" << ran.string() << "\", \"w\")) std::fclose(f);\n}\n";
  const kiln::support::ProcessResult built =
      kiln::support::run_process({KILN_TEST_CLANGXX, "-shared", "-fPIC", "-o",
                                  (dir / "planted.so").string(), (dir / "planted.cpp").string()});
  ASSERT_EQ(built.exit_code, 0) << built.output;
  const std::string planted = kiln_test::slurp(dir / "planted.so");

  const fs::path entry_file = entries(cache).at(0);
  const std::string original = kiln_test::slurp(entry_file);
  uint64_t payload_size = 0;
  std::memcpy(&payload_size, original.data() + 16, sizeof payload_size);
  ASSERT_LE(jd::kEntryHeaderSize + payload_size, original.size());
  const auto* payload = reinterpret_cast<const std::byte*>(original.data() + jd::kEntryHeaderSize);
  std::optional<jd::CacheEntry> entry =
      jd::unpack_entry(std::span(payload, static_cast<size_t>(payload_size)));
  ASSERT_TRUE(entry.has_value());
  ASSERT_EQ(entry->code.size(), 1u);
  const auto* code = reinterpret_cast<const std::byte*>(planted.data());
  entry->code[0].assign(code, code + planted.size());
  const std::vector<std::byte> forged = jd::pack_entry(*entry);
  std::string file = original.substr(0, jd::kEntryHeaderSize);
  const uint64_t forged_size = forged.size();
  std::memcpy(file.data() + 16, &forged_size, sizeof forged_size);
  const kiln::compiler::Hash128 sum = kiln::compiler::hash_bytes(forged.data(), forged.size());
  std::memcpy(file.data() + 24, &sum.lo, sizeof sum.lo);
  std::memcpy(file.data() + 32, &sum.hi, sizeof sum.hi);
  file.append(reinterpret_cast<const char*>(forged.data()), forged.size());
  file += original.substr(jd::kEntryHeaderSize + payload_size);  // the old MAC
  std::ofstream(entry_file, std::ios::binary | std::ios::trunc) << file;

  FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = cache});
  use(jit);
  call_and_check(5, 94);
  EXPECT_FALSE(fs::exists(ran)) << "the planted constructor ran";
  EXPECT_EQ(jit.counters().untrusted_entries, 1u);
  EXPECT_EQ(jit.counters().corrupt_entries, 0u);
  EXPECT_EQ(jit.counters().disk_hits, 0u);
  EXPECT_EQ(jit.counters().compiles, 1u);
  EXPECT_EQ(kiln_test::slurp(entry_file).size(), original.size()) << "rewritten";
  EXPECT_EQ(kiln::jit::cache_stats(cache).counters["untrusted_entries"], 1u);
  const kiln::support::ProcessResult stats =
      kiln::support::run_process({KILN_TEST_KILN_CLI, "cache", "stats", "--dir", cache.string()});
  EXPECT_NE(stats.output.find("untrusted entries: 1\n"), std::string::npos) << stats.output;
}

// Each cache has its own key: an entry copied in from another cache (as
// another user's would be) is a counted miss, recompiled; the rewritten
// entry then hits.
TEST_F(JitCpu, AnEntryFromAnotherCachesKeyIsAMissThenRewritten) {
  const fs::path dir = kiln_test::fresh_dir("jit/other_key");
  for (const char* name : {"a", "b"}) {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir / name});
    use(jit);
    call_and_check(5, 95);
  }
  EXPECT_NE(kiln_test::slurp(dir / "a" / kiln::jit::detail::kMacKeyFile),
            kiln_test::slurp(dir / "b" / kiln::jit::detail::kMacKeyFile));
  const fs::path from_a = entries(dir / "a").at(0);
  const fs::path in_b = entries(dir / "b").at(0);
  ASSERT_EQ(from_a.filename(), in_b.filename());
  fs::copy_file(from_a, in_b, fs::copy_options::overwrite_existing);
  {
    kiln_test::ScopedEnv log("KILN_LOG", "cache");
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir / "b"});
    use(jit);
    testing::internal::CaptureStderr();
    call_and_check(5, 96);
    const std::string said = testing::internal::GetCapturedStderr();
    EXPECT_EQ(jit.counters().untrusted_entries, 1u);
    EXPECT_EQ(jit.counters().compiles, 1u);
    EXPECT_NE(said.find("failed its MAC check"), std::string::npos) << said;
  }
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir / "b"});
  use(jit);
  call_and_check(5, 97);
  EXPECT_EQ(jit.counters().disk_hits, 1u);
  EXPECT_EQ(jit.counters().untrusted_entries, 0u);
}

// A MAC key file that is a symlink, readable by others, or of the wrong
// length is refused, never silently replaced.
TEST_F(JitCpu, ABadMacKeyFileIsRefusedNotReplaced) {
  const fs::path dir = kiln_test::fresh_dir("jit/bad_key");
  const fs::path cache = dir / "cache";
  EXPECT_EQ(refusal(cache), "");
  const fs::path key = cache / kiln::jit::detail::kMacKeyFile;
  EXPECT_EQ(mode_of(key), 0600u);
  EXPECT_EQ(fs::file_size(key), kiln::support::kMacKeyBytes);
  const std::string good = kiln_test::slurp(key);

  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  std::string why = refusal(cache);
  EXPECT_NE(why.find("MAC key '" + key.string() + "' is a file of 32 bytes owned by uid " +
                     std::to_string(::geteuid()) + ", mode 0644, expected"),
            std::string::npos)
      << why;
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  std::ofstream(key, std::ios::app) << "x";
  why = refusal(cache);
  EXPECT_NE(why.find("of 33 bytes"), std::string::npos) << why;
  fs::remove(key);
  std::ofstream(dir / "elsewhere") << good;
  fs::create_symlink(dir / "elsewhere", key);
  why = refusal(cache);
  EXPECT_NE(why.find("is a symlink, expected a file"), std::string::npos) << why;
  EXPECT_EQ(kiln_test::slurp(dir / "elsewhere"), good);
}

// KILN_CACHE_DIR=$HOME: a directory that is not Kiln's. `kiln cache
// clear|prune` refuse it (and touch nothing), and so does the JIT; an older
// Kiln's cache (nothing but Kiln's layout) is adopted and marked.
TEST_F(JitCpu, ADirectoryKilnDidNotMarkIsNeitherUsedNorPrunedNorCleared) {
  const fs::path dir = kiln_test::fresh_dir("jit/not_kiln");
  const fs::path home = dir / "home";
  const std::vector<fs::path> theirs = {home / "notes.txt", home / "build" / "report.tmp.1.2",
                                        home / "build" / "model.kjit",
                                        home / "ab" / ("ab" + std::string(30, '1') + ".kjit")};
  for (const fs::path& f : theirs) {
    fs::create_directories(f.parent_path());
    std::ofstream(f) << "the user's";
    fs::last_write_time(f, fs::file_time_type::clock::now() - std::chrono::hours(3));
  }
  for (const char* action : {"clear", "prune"}) {
    const kiln::support::ProcessResult r = kiln::support::run_process(
        {KILN_TEST_KILN_CLI, "cache", action, "--dir", home.string(), "--max-size", "0"});
    EXPECT_EQ(r.exit_code, 1) << action << ": " << r.output;
    EXPECT_NE(r.output.find("not a Kiln cache: '" + home.string() +
                            "' has no CACHEDIR.TAG written by Kiln"),
              std::string::npos)
        << r.output;
  }
  EXPECT_THROW(kiln::jit::clear_cache(home), kiln::jit::CacheDirError);
  const std::string why = refusal(home);
  EXPECT_NE(why.find("holds 'notes.txt', which is not Kiln's"), std::string::npos) << why;
  for (const fs::path& f : theirs) EXPECT_EQ(kiln_test::slurp(f), "the user's") << f;
  EXPECT_FALSE(fs::exists(home / "CACHEDIR.TAG"));

  // An older Kiln's cache: fan-out directories, counters, a 0755 mode.
  const fs::path old = dir / "old_cache";
  fs::create_directories(old / "ab");
  std::ofstream(old / "stats") << "compiles 3\n";
  ASSERT_EQ(::chmod(old.c_str(), 0755), 0);
  EXPECT_EQ(refusal(old), "");
  EXPECT_NE(kiln_test::slurp(old / "CACHEDIR.TAG")
                .find("Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache "
                      "directory tag created by Kiln"),
            std::string::npos);
  EXPECT_EQ(mode_of(old), 0700u);
}

// In a Kiln cache, clear and prune remove Kiln's files only: another file
// that happens to end in .kjit or hold ".tmp.", outside the fan-out
// directories or behind a symlink, stays.
TEST_F(JitCpu, ClearAndPruneRemoveOnlyFilesOfKilnsLayout) {
  const fs::path dir = kiln_test::fresh_dir("jit/layout");
  const fs::path cache = dir / "cache";
  {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = cache});
    use(jit);
    call_and_check(5, 98);
  }
  const std::string hex32 = "cd" + std::string(30, '2');
  fs::create_directories(dir / "elsewhere");
  const std::vector<fs::path> others = {cache / "notes.kjit",
                                        cache / "sub" / (hex32 + ".kjit"),
                                        cache / "sub" / "y.kjit.tmp.1.2",
                                        cache / "cd" / "readme.txt",
                                        cache / "compilers" / "mine.md",
                                        dir / "elsewhere" / (hex32 + ".kjit")};
  for (const fs::path& f : others) {
    fs::create_directories(f.parent_path());
    std::ofstream(f) << "not Kiln's";
    fs::last_write_time(f, fs::file_time_type::clock::now() - std::chrono::hours(3));
  }
  fs::create_directory_symlink(dir / "elsewhere", cache / "ef");
  EXPECT_EQ(kiln::jit::cache_stats(cache).entries, 1u);
  EXPECT_EQ(kiln::jit::cache_stats(cache).temp_files, 0u);
  EXPECT_EQ(kiln::jit::prune_cache(cache, 0), 1u);
  EXPECT_EQ(kiln::jit::clear_cache(cache), 0u);
  for (const fs::path& f : others) EXPECT_EQ(kiln_test::slurp(f), "not Kiln's") << f;
  EXPECT_TRUE(entries(cache / "sizes").empty());
  EXPECT_FALSE(fs::exists(cache / "stats"));
  // The marker and the key stay: the directory is still Kiln's cache.
  EXPECT_TRUE(fs::exists(cache / "CACHEDIR.TAG"));
  EXPECT_TRUE(fs::exists(cache / kiln::jit::detail::kMacKeyFile));
}

// A JIT killed mid-compile leaves its scratch directory; the next JIT to
// open a cache removes it once its process is gone and it is an hour old,
// and leaves a live process's, a young one and a symlink alone.
TEST_F(JitCpu, ScratchDirectoriesOfDeadProcessesAreReclaimed) {
  const fs::path dir = kiln_test::fresh_dir("jit/scratch");
  const fs::path temp = dir / "tmp";
  fs::create_directories(temp);
  kiln_test::ScopedEnv tmpdir("TMPDIR", temp.c_str());
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);  // its pid is now free
  const std::string dead = std::to_string(child);
  const std::string live = std::to_string(::getpid());
  const auto hours_ago = fs::file_time_type::clock::now() - std::chrono::hours(2);
  auto scratch = [&](const std::string& name, bool old) {
    fs::create_directories(temp / name);
    std::ofstream(temp / name / "kernels.cpp") << "half written";
    if (old) fs::last_write_time(temp / name, hours_ago);
  };
  scratch("kiln-jit-" + dead + "-a1B2c3", true);
  scratch("kiln-jit-" + dead + "-young1", false);
  scratch("kiln-jit-" + live + "-alive1", true);
  fs::create_directories(dir / "elsewhere");
  fs::create_directory_symlink(dir / "elsewhere", temp / ("kiln-jit-" + dead + "-link12"));
  {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir / "cache"});
    use(jit);
    call_and_check(5, 99);  // its own scratch directory comes and goes
    EXPECT_EQ(jit.counters().compiles, 1u);
  }
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(temp)) left.push_back(e.path().filename().string());
  std::vector<std::string> kept = {"kiln-jit-" + dead + "-link12", "kiln-jit-" + dead + "-young1",
                                   "kiln-jit-" + live + "-alive1"};
  std::sort(left.begin(), left.end());
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(left, kept);
  EXPECT_TRUE(fs::exists(dir / "elsewhere"));
}

// `clang++ --version` runs once per compiler binary (path, size, mtime), not
// once per JIT: it costs more than loading a cached entry.
TEST_F(JitCpu, TheCompilerVersionIsAskedOncePerBinaryAndAgainWhenItChanges) {
  const fs::path dir = kiln_test::fresh_dir("jit/identity");
  const fs::path asked = dir / "asked";
  const std::string cxx = script(dir, "counting-clang++",
                                 "if [ \"$1\" = --version ]; then echo x >> '" + asked.string() +
                                     "'; fi\nexec '" + std::string(KILN_TEST_CLANGXX) + "' \"$@\"");
  auto times_asked = [&] {
    std::ifstream in(asked);
    return std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), 'x');
  };
  for (int run = 0; run < 2; ++run) {
    FallbackJit jit({.cxx = cxx, .cache_dir = dir / "cache"});
    use(jit);
    call_and_check(6, 13);
    EXPECT_EQ(jit.counters().compiles + jit.counters().disk_hits, 1u);
  }
  EXPECT_EQ(times_asked(), 1);
  EXPECT_EQ(fs::exists(dir / "cache" / "compilers"), true);
  // A rebuilt compiler: a new mtime. The key is the same (the same version
  // line), so the entry is still a hit.
  fs::last_write_time(cxx, fs::last_write_time(cxx) + std::chrono::seconds(5));
  FallbackJit jit({.cxx = cxx, .cache_dir = dir / "cache"});
  use(jit);
  call_and_check(6, 14);
  EXPECT_EQ(times_asked(), 2);
  EXPECT_EQ(jit.counters().disk_hits, 1u);
}

TEST_F(JitCpu, AShapeNoCompileCanServeIsAGuardMismatchNamingExpectedAndActual) {
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .disk_cache = false});
  use(jit);
  std::vector<float> x(4 * 36, 1.0f), w(37, 1.0f), b(37, 1.0f), ln(4 * 36), sm(4 * 36);
  try {
    package_->graph("norms").call({kiln::TensorView(x.data(), kiln::DType::f32, {4, 36}),
                                   kiln::TensorView(w.data(), kiln::DType::f32, {37}),
                                   kiln::TensorView(b.data(), kiln::DType::f32, {37})},
                                  {kiln::TensorView(ln.data(), kiln::DType::f32, {4, 36}),
                                   kiln::TensorView(sm.data(), kiln::DType::f32, {4, 36})});
    FAIL() << "no error";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::guard_mismatch) << e.what();
    EXPECT_NE(std::string(e.what()).find("x.shape[1]: expected 37, got 36"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(jit.counters().compiles, 0u);
}

TEST_F(JitCpu, FailOnRecompileNeverReachesTheJit) {
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .disk_cache = false});
  use(jit);
  package_->set_stance(kiln::Stance::fail_on_recompile);
  try {
    call_and_check(5, 11);
    FAIL() << "expected RecompileError";
  } catch (const kiln::RecompileError& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::recompile_required);
    EXPECT_EQ(std::string(e.what()),
              "kiln: graph 'norms' has no specialization for this call (fail_on_recompile): the "
              "package has no specialization for this device and CPU");
  }
  EXPECT_EQ(jit.counters().requests, 0u);
  // What a JIT compiled earlier still runs: running it is no recompile.
  package_->set_stance(kiln::Stance::fallback);
  call_and_check(5, 12);
  package_->set_stance(kiln::Stance::fail_on_recompile);
  call_and_check(5, 13);
  EXPECT_THROW(call_and_check(6, 14), kiln::RecompileError);
  EXPECT_EQ(jit.counters().requests, 1u);
  EXPECT_EQ(package_->graph("norms").counters().jit_hits, 1u);
}

// Runs jit_cache_child, a separate process, on `cache`; returns its output.
std::string run_child(const fs::path& cache) {
  const kiln::support::ProcessResult r = kiln::support::run_process(
      {"/usr/bin/env", "KILN_CACHE_DIR=" + cache.string(), KILN_TEST_JIT_CHILD, KILN_TEST_CLANGXX});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.output;
}

TEST_F(JitCpu, ASecondProcessHitsTheDiskCacheWithZeroCompiles) {
  const fs::path cache = kiln_test::fresh_dir("jit/two_processes");
  EXPECT_NE(run_child(cache).find("JIT compiles=1 disk_hits=0"), std::string::npos);
  const std::string second = run_child(cache);
  EXPECT_NE(second.find("JIT compiles=0 disk_hits=1"), std::string::npos) << second;
}

TEST_F(JitCpu, FourProcessesOnOneCacheDirAllSucceedAndLeaveOneEntry) {
  const fs::path cache = kiln_test::fresh_dir("jit/four_processes");
  std::vector<std::thread> threads;
  std::vector<std::string> outputs(4);
  for (size_t p = 0; p < 4; ++p) {
    threads.emplace_back([&, p] { outputs[p] = run_child(cache); });
  }
  for (auto& t : threads) t.join();
  for (const std::string& out : outputs) {
    EXPECT_NE(out.find("JIT compiles="), std::string::npos) << out;
  }
  // Renames replace whole files: one entry, no temp file left behind.
  const auto files = entries(cache);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].extension(), ".kjit");
  // They agreed on one MAC key: whichever wrote the entry, it is a hit.
  EXPECT_NE(run_child(cache).find("JIT compiles=0 disk_hits=1"), std::string::npos);
}

// What a process compiled, exported as a delta and merged into the package:
// a process that loads the result runs those shapes precompiled, with zero
// compiles (PyTorch's mega-cache hot-load, done as packages).
TEST_F(JitCpu, ExportPlusMergeGivesZeroCompiles) {
  const fs::path dir = kiln_test::fresh_dir("jit/export");
  {
    FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .disk_cache = false});
    use(jit);
    call_and_check(5, 60);
    call_and_check(6, 61);
    call_and_check(7, 62);  // the third size: dynamic
    call_and_check(5, 63);  // a jit hit, not a second specialization
    EXPECT_EQ(jit.counters().compiles, 3u);
    EXPECT_EQ(package_->export_compiled(dir / "delta.kiln"), 3u);
  }
  EXPECT_EQ(kiln_test::blob_digest_problems(kiln::PackageReader::open_file(dir / "delta.kiln")),
            "");
  std::ofstream(dir / "base.kiln", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes_.data()),
             static_cast<std::streamsize>(bytes_.size()));
  const kiln::support::ProcessResult merged = kiln::support::run_process(
      {KILN_TEST_KILN_CLI, "merge", (dir / "base.kiln").string(), (dir / "delta.kiln").string(),
       "-o", (dir / "merged.kiln").string()});
  ASSERT_EQ(merged.exit_code, 0) << merged.output;
  EXPECT_NE(merged.output.find("3 specializations added"), std::string::npos) << merged.output;
  EXPECT_EQ(kiln_test::blob_digest_problems(kiln::PackageReader::open_file(dir / "merged.kiln")),
            "");

  // A new process: a fresh JIT registered, which must never be asked.
  FallbackJit fresh({.cxx = KILN_TEST_CLANGXX, .disk_cache = false});
  kiln::set_jit_compiler(&fresh);
  kiln::Package result = kiln::Package::open(dir / "merged.kiln");
  for (int64_t n : {5, 6, 7, 300}) {
    EXPECT_EQ(kiln_test::call_and_compare(result, graph_, n, 70 + static_cast<uint64_t>(n)), "");
  }
  const kiln::GraphCounters c = result.graph("norms").counters();
  EXPECT_EQ(c.hits, 4u);
  EXPECT_EQ(c.misses, 0u);
  EXPECT_EQ(fresh.counters().requests, 0u);
  EXPECT_EQ(fresh.counters().compiles, 0u);
}

// Nothing compiled: a valid delta with no graphs, which merges as a no-op;
// no JIT registered: a typed error.
TEST_F(JitCpu, ExportWithNothingCompiledOrNoJit) {
  const fs::path dir = kiln_test::fresh_dir("jit/export_empty");
  FallbackJit jit({.cxx = KILN_TEST_CLANGXX, .disk_cache = false});
  use(jit);
  EXPECT_EQ(package_->export_compiled(dir / "delta.kiln"), 0u);
  const kiln::Package delta = kiln::Package::open(dir / "delta.kiln");
  EXPECT_TRUE(delta.graph_names().empty());
  kiln::set_jit_compiler(nullptr);
  try {
    package_->export_compiled(dir / "other.kiln");
    FAIL();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("no JIT compiler is registered"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(dir / "other.kiln"));
}

// Automatic dynamic spans processes through the cache directory: after two
// sizes seen by one process, a new process compiles a third size dynamic at
// once, and that one specialization serves every further size.
TEST_F(JitCpu, AutomaticDynamicRemembersSizesAcrossProcesses) {
  const fs::path dir = kiln_test::fresh_dir("jit/size_history");
  {
    FallbackJit first({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir});
    use(first);
    call_and_check(5, 80);
    call_and_check(6, 81);
    EXPECT_EQ(first.counters().compiles, 2u);
  }
  FallbackJit second({.cxx = KILN_TEST_CLANGXX, .cache_dir = dir});
  use(second);
  call_and_check(5, 82);  // a size with static code: loaded from the disk cache
  EXPECT_EQ(second.counters().disk_hits, 1u);
  call_and_check(9, 83);  // a third size: dynamic, not a third static one
  call_and_check(10, 84);
  call_and_check(5, 85);
  EXPECT_EQ(second.counters().compiles, 1u);
  EXPECT_EQ(second.counters().requests, 2u);
  EXPECT_EQ(package_->graph("norms").counters().jit_hits, 2u);
  kiln::jit::clear_cache(dir);
  EXPECT_FALSE(fs::exists(dir / "sizes"));
}

}  // namespace
