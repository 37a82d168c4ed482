// Uses an installed Kiln's fallback JIT (Kiln::jit) the way an application
// does: a package built with NO_GENERAL holds scale_shift only for its hot
// size (16 rows), so a call with 23 rows misses and kiln::jit::install()'s
// JIT compiles it (clang++ at run time, a fresh cache directory under the
// build tree). Checks every element against x * 2 + 1 on random non-zero
// inputs, that the miss made exactly one compile, and that a second call
// with that shape is a jit hit the JIT never sees. Exits non-zero on any
// mismatch or error.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <kiln/jit/fallback_jit.h>
#include <kiln/runtime.h>

#ifndef CONSUMER_JIT_PACKAGE_PATH
#error "CONSUMER_JIT_PACKAGE_PATH must name the NO_GENERAL package"
#endif
#ifndef CONSUMER_JIT_CACHE_DIR
#error "CONSUMER_JIT_CACHE_DIR must name the JIT's cache directory"
#endif

namespace {

constexpr int64_t kWidth = 64;

// Random, never zero: magnitudes in [0.25, 4), either sign.
std::vector<float> random_input(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> magnitude(0.25f, 4.0f);
  std::bernoulli_distribution negative(0.5);
  std::vector<float> x(static_cast<size_t>(count));
  for (float& v : x) v = negative(rng) ? -magnitude(rng) : magnitude(rng);
  return x;
}

// Calls scale_shift on `rows` rows of fresh random data; returns the number
// of elements that differ from x * 2 + 1.
int call_and_check(kiln::Graph& g, const char* what, int64_t rows, uint32_t seed) {
  std::vector<float> x = random_input(rows * kWidth, seed);
  std::vector<float> out(x.size(), std::numeric_limits<float>::quiet_NaN());
  g.call({kiln::TensorView(x.data(), kiln::DType::f32, {rows, kWidth})},
         {kiln::TensorView(out.data(), kiln::DType::f32, {rows, kWidth})});
  int bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = x[i] * 2.0f + 1.0f;
    const float tol = 1e-6f * std::fabs(want) + 1e-6f;
    if (!(std::fabs(out[i] - want) <= tol)) {  // NaN fails too
      if (bad < 5) {
        std::fprintf(stderr, "%s n=%lld: out[%zu] = %.9g, want %.9g (x = %.9g)\n", what,
                     static_cast<long long>(rows), i, out[i], want, x[i]);
      }
      ++bad;
    }
  }
  return bad;
}

bool expect(bool ok, const std::string& what) {
  if (!ok) std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  return ok;
}

std::string counters_text(const kiln::GraphCounters& c, const kiln::jit::JitCounters& j) {
  return "graph: " + std::to_string(c.calls) + " calls, " + std::to_string(c.hits) + " hits, " +
         std::to_string(c.jit_hits) + " jit hits, " + std::to_string(c.misses) +
         " misses; JIT: " + std::to_string(j.requests) + " requests, " +
         std::to_string(j.compiles) + " compiles, " + std::to_string(j.disk_hits) + " disk hits";
}

}  // namespace

int main() {
  try {
    // A fresh directory, so the miss compiles on every run of the test.
    const std::filesystem::path cache = CONSUMER_JIT_CACHE_DIR;
    std::filesystem::remove_all(cache);
    kiln::jit::FallbackJit& jit = kiln::jit::install({.cache_dir = cache});
    auto pkg = kiln::Package::open(CONSUMER_JIT_PACKAGE_PATH, {.stance = kiln::Stance::fallback});
    kiln::Graph& g = pkg.graph("scale_shift");
    bool ok = true;

    // The hot size runs precompiled: the JIT is not asked.
    ok &= expect(call_and_check(g, "hot", 16, 1) == 0, "n=16 (precompiled) mismatched");
    ok &= expect(g.counters().hits == 1 && jit.counters().requests == 0,
                 "n=16 did not run precompiled: " + counters_text(g.counters(), jit.counters()));

    // 23 rows: no specialization of the package accepts it; the JIT compiles one.
    ok &= expect(call_and_check(g, "compiled", 23, 2) == 0, "n=23 (JIT-compiled) mismatched");
    kiln::GraphCounters c = g.counters();
    kiln::jit::JitCounters j = jit.counters();
    ok &= expect(c.misses == 1 && c.jit_served == 1 && j.compiles == 1 && j.requests == 1,
                 "n=23 was not one miss served by one compile: " + counters_text(c, j));

    // The same shape again, other data: the runtime runs what it adopted.
    ok &= expect(call_and_check(g, "jit hit", 23, 3) == 0, "n=23 (jit hit) mismatched");
    c = g.counters();
    j = jit.counters();
    ok &= expect(c.jit_hits == 1 && c.misses == 1 && j.requests == 1 && j.compiles == 1,
                 "the second n=23 call was not a jit hit: " + counters_text(c, j));
    if (!ok) return 1;
    std::printf("%s\n", counters_text(c, j).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAILED: %s\n", e.what());
    return 1;
  }
  std::puts("ok");
  return 0;
}
