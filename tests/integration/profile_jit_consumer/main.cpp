// Uses an installed Kiln the way an application does: the generated typed
// function (embedded package) and the package file written by PACKAGE. Checks
// every element against x * 2 + 1, and which specialization each size runs:
// built with the profile an earlier run recorded (CONSUMER_PROFILED), every
// size it called has a static one. Exits non-zero on any mismatch or error.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "consumer_graphs.h"

#ifndef CONSUMER_PACKAGE_PATH
#error "CONSUMER_PACKAGE_PATH must name the package written by PACKAGE"
#endif

namespace {

// Random, never zero: magnitudes in [0.25, 4), either sign.
std::vector<float> random_input(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> magnitude(0.25f, 4.0f);
  std::bernoulli_distribution negative(0.5);
  std::vector<float> x(static_cast<size_t>(count));
  for (float& v : x) v = negative(rng) ? -magnitude(rng) : magnitude(rng);
  return x;
}

int count_mismatches(const char* what, int64_t rows, const std::vector<float>& x,
                     const std::vector<float>& out) {
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

}  // namespace

int main() {
  try {
    int failures = 0;
    // Only precompiled specializations may run: a guard miss throws instead of
    // compiling, so a wrong package cannot pass by falling back.
    consumer_graphs::loaded_package().set_stance(kiln::Stance::fail_on_recompile);
    auto pkg =
        kiln::Package::open(CONSUMER_PACKAGE_PATH, {.stance = kiln::Stance::fail_on_recompile});
    int calls = 0;
    // 16 is a hot (static) specialization; 37 and 1 take the general one,
    // unless a profile recorded them.
    for (int64_t rows : {int64_t{16}, int64_t{37}, int64_t{1}}) {
#ifdef CONSUMER_PROFILED
      const std::string want = "n=" + std::to_string(rows);
#else
      const std::string want = rows == 16 ? "n=16" : "general";
#endif
      const int64_t count = rows * 64;
      std::vector<float> x = random_input(count, static_cast<uint32_t>(rows) * 7919u + 1u);
      const float poison = std::numeric_limits<float>::quiet_NaN();

      std::vector<float> out(x.size(), poison);
      consumer_graphs::scale_shift(kiln::TensorView(x.data(), kiln::DType::f32, {rows, 64}),
                                   kiln::TensorView(out.data(), kiln::DType::f32, {rows, 64}));
      failures += count_mismatches("embedded", rows, x, out);

      std::vector<float> out2(x.size(), poison);
      kiln::TensorView xv(x.data(), kiln::DType::f32, {rows, 64});
      kiln::TensorView ov(out2.data(), kiln::DType::f32, {rows, 64});
      const DLTensor* args[] = {&xv.dl(), &ov.dl()};
      for (kiln::Package* p : {&consumer_graphs::loaded_package(), &pkg}) {
        const std::string_view got = p->graph("scale_shift").select({args, 1}, {args + 1, 1});
        if (got != want) {
          std::fprintf(stderr, "FAILED: n=%lld runs '%.*s', want '%s'\n",
                       static_cast<long long>(rows), static_cast<int>(got.size()), got.data(),
                       want.c_str());
          ++failures;
        }
      }
      pkg.graph("scale_shift").call({xv}, {ov});
      failures += count_mismatches("package file", rows, x, out2);
      ++calls;
    }
    const kiln::GraphCounters counters = pkg.graph("scale_shift").counters();
    if (counters.calls != static_cast<uint64_t>(calls) || counters.hits != counters.calls) {
      std::fprintf(stderr, "FAILED: counters: %llu calls, %llu hits, want %d of each\n",
                   static_cast<unsigned long long>(counters.calls),
                   static_cast<unsigned long long>(counters.hits), calls);
      ++failures;
    }
    if (failures != 0) {
      std::fprintf(stderr, "FAILED: %d mismatched elements\n", failures);
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAILED: %s\n", e.what());
    return 1;
  }
  std::puts("ok");
  return 0;
}
