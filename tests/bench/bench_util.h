// Small helpers shared by the benchmarks: timing, medians, JSON lines.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace kiln_bench {

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Repeats fn until both `min_reps` runs and `min_seconds` have passed (or
// max_reps), returning each run's seconds.
template <typename F>
std::vector<double> time_runs(F fn, int min_reps, double min_seconds, int max_reps = 1000) {
  std::vector<double> t;
  const double start = now_seconds();
  while (static_cast<int>(t.size()) < min_reps ||
         (now_seconds() - start < min_seconds && static_cast<int>(t.size()) < max_reps)) {
    const double t0 = now_seconds();
    fn();
    t.push_back(now_seconds() - t0);
  }
  return t;
}

}  // namespace kiln_bench
