// Package open + verify + first call of the 10,000-sin graph: what a process
// pays before its first result. Target: at most 10 ms (../shared/ANCHORS.md).
// Usage: bench_load PACKAGE [repetitions]
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <kiln/runtime.h>

#include "bench_util.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PACKAGE [repetitions]\n", argv[0]);
    return 2;
  }
  const int reps = argc > 2 ? std::atoi(argv[2]) : 30;
  const int64_t n = 1024;
  std::vector<float> x(n), y(n);
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = 0.001f * static_cast<float>(i + 1);

  std::vector<double> open_s, first_call_s, total_s;
  for (int r = 0; r < reps; ++r) {
    const double t0 = kiln_bench::now_seconds();
    kiln::Package pkg = kiln::Package::open(argv[1]);
    kiln::Graph& g = pkg.graph("sin_chain");
    const double t1 = kiln_bench::now_seconds();
    g.call({kiln::TensorView(x.data(), kiln::DType::f32, {n})},
           {kiln::TensorView(y.data(), kiln::DType::f32, {n})});
    const double t2 = kiln_bench::now_seconds();
    open_s.push_back(t1 - t0);
    first_call_s.push_back(t2 - t1);
    total_s.push_back(t2 - t0);
  }
  const double open_ms = 1e3 * kiln_bench::median(open_s);
  const double call_ms = 1e3 * kiln_bench::median(first_call_s);
  const double total_ms = 1e3 * kiln_bench::median(total_s);
  const double cold_ms = 1e3 * total_s.front();
  std::printf(
      "{\"bench\":\"load\",\"graph\":\"sin_chain\",\"ops\":10000,\"n\":%lld,\"reps\":%d,"
      "\"open_verify_ms\":%.3f,\"first_call_ms\":%.3f,\"total_ms_median\":%.3f,"
      "\"total_ms_first_in_process\":%.3f,\"target_ms\":10,\"pytorch_warm_1000_sins_ms\":520}\n",
      static_cast<long long>(n), reps, open_ms, call_ms, total_ms, cold_ms);
  std::printf("\n%-34s %10s\n", "load: sin_chain (10,000 ops)", "ms");
  std::printf("%-34s %10.3f\n", "open + verify (median)", open_ms);
  std::printf("%-34s %10.3f\n", "first call (median)", call_ms);
  std::printf("%-34s %10.3f\n", "total (median)", total_ms);
  std::printf("%-34s %10.3f\n", "total, first in process", cold_ms);
  std::printf("%-34s %10s\n", "target", "<= 10");
  return 0;
}
