// Package open + verify + first call of the 10,000-sin graph: what a process
// pays before its first result. Target: at most 10 ms (../shared/ANCHORS.md).
// Usage: bench_load PACKAGE [repetitions]
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <kiln/runtime.h>

#include "bench_util.h"

namespace {

struct LoadTimes {
  double open_ms, first_call_ms, total_ms, first_in_process_ms;
};

// Each repetition opens the package anew: a fresh memfd + dlopen of the
// kernels, as a new process would do.
LoadTimes measure(const char* path, int64_t n, int reps) {
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = 0.001f * static_cast<float>(i + 1);
  std::vector<double> open_s, first_call_s, total_s;
  for (int r = 0; r < reps; ++r) {
    const double t0 = kiln_bench::now_seconds();
    kiln::Package pkg = kiln::Package::open(path);
    kiln::Graph& g = pkg.graph("sin_chain");
    const double t1 = kiln_bench::now_seconds();
    g.call({kiln::TensorView(x.data(), kiln::DType::f32, {n})},
           {kiln::TensorView(y.data(), kiln::DType::f32, {n})});
    const double t2 = kiln_bench::now_seconds();
    open_s.push_back(t1 - t0);
    first_call_s.push_back(t2 - t1);
    total_s.push_back(t2 - t0);
  }
  return {1e3 * kiln_bench::median(open_s), 1e3 * kiln_bench::median(first_call_s),
          1e3 * kiln_bench::median(total_s), 1e3 * total_s.front()};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PACKAGE [repetitions]\n", argv[0]);
    return 2;
  }
  const int reps = argc > 2 ? std::atoi(argv[2]) : 30;
  // n = 1: the first call is all loading (10,000 sins of one element take
  // microseconds). n = 1024: the first call also computes 10M sins.
  std::printf("%-6s %14s %14s %14s %18s\n", "n", "open+verify", "first call", "total",
              "first in process");
  for (const int64_t n : {int64_t{1}, int64_t{1024}}) {
    const LoadTimes t = measure(argv[1], n, reps);
    std::printf(
        "{\"bench\":\"load\",\"graph\":\"sin_chain\",\"ops\":10000,\"n\":%lld,\"reps\":%d,"
        "\"open_verify_ms\":%.3f,\"first_call_ms\":%.3f,\"total_ms_median\":%.3f,"
        "\"total_ms_first_in_process\":%.3f,\"target_ms\":10,\"pytorch_warm_1000_sins_ms\":520}\n",
        static_cast<long long>(n), reps, t.open_ms, t.first_call_ms, t.total_ms,
        t.first_in_process_ms);
    std::printf("%-6lld %11.3f ms %11.3f ms %11.3f ms %15.3f ms\n", static_cast<long long>(n),
                t.open_ms, t.first_call_ms, t.total_ms, t.first_in_process_ms);
  }
  std::printf(
      "target: open + verify + first call <= 10 ms; PyTorch warm start, 1,000 sins: 520 ms\n");
  return 0;
}
