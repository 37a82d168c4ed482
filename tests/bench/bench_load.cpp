// Package open + verify + first call: what a process pays before its first
// result, for each package given: the 10,000-sin graph, and packages of 1,
// 100 and 10,000 small graphs (bench_many_graphs). The first call runs the
// package's first graph, which takes one f32[n] and gives one f32[n]. Each
// row also gives the time per package byte, so that load time growing no
// faster than the package is visible. Target for the sin chain: at most
// 10 ms (../shared/ANCHORS.md).
// Usage: bench_load [--reps N] PACKAGE...
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <kiln/runtime.h>

#include "bench_util.h"

namespace {

struct LoadTimes {
  double open_ms, first_call_ms, total_ms, first_in_process_ms;
  size_t graphs;
};

// Each repetition opens the package anew: a fresh read, verify, memfd +
// dlopen of the kernels, as a new process would do.
LoadTimes measure(const std::string& path, int64_t n, int reps) {
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = 0.001f * static_cast<float>(i + 1);
  std::vector<double> open_s, first_call_s, total_s;
  size_t graphs = 0;
  for (int r = 0; r < reps; ++r) {
    const double t0 = kiln_bench::now_seconds();
    kiln::Package pkg = kiln::Package::open(path);
    kiln::Graph& g = pkg.graph(pkg.graph_names().front());
    const double t1 = kiln_bench::now_seconds();
    g.call({kiln::TensorView(x.data(), kiln::DType::f32, {n})},
           {kiln::TensorView(y.data(), kiln::DType::f32, {n})});
    const double t2 = kiln_bench::now_seconds();
    open_s.push_back(t1 - t0);
    first_call_s.push_back(t2 - t1);
    total_s.push_back(t2 - t0);
    graphs = pkg.graph_names().size();
  }
  return {1e3 * kiln_bench::median(open_s), 1e3 * kiln_bench::median(first_call_s),
          1e3 * kiln_bench::median(total_s), 1e3 * total_s.front(), graphs};
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 30;
  std::vector<std::string> packages;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      packages.push_back(arg);
    }
  }
  if (packages.empty() || reps < 1) {
    std::fprintf(stderr, "usage: %s [--reps N] PACKAGE...\n", argv[0]);
    return 2;
  }
  struct Row {
    std::string name;
    size_t graphs;
    uintmax_t bytes;
    int64_t n;
    LoadTimes t;
  };
  std::vector<Row> rows;
  for (const std::string& path : packages) {
    const std::string name = std::filesystem::path(path).stem().string();
    const uintmax_t bytes = std::filesystem::file_size(path);
    // n = 1: the first call is all loading. For the sin chain also
    // n = 1024, where the first call also computes 10M sins.
    const bool sin_chain = kiln::Package::open(path).graph_names().front() == "sin_chain";
    for (const int64_t n : sin_chain ? std::vector<int64_t>{1, 1024} : std::vector<int64_t>{1}) {
      const LoadTimes t = measure(path, n, reps);
      std::printf(
          "{\"bench\":\"load\",\"package\":\"%s\",\"graphs\":%zu,\"package_bytes\":%ju,"
          "\"n\":%lld,\"reps\":%d,\"open_verify_ms\":%.3f,\"first_call_ms\":%.3f,"
          "\"total_ms_median\":%.3f,\"total_ms_first_in_process\":%.3f,"
          "\"ns_per_byte\":%.3f%s}\n",
          name.c_str(), t.graphs, bytes, static_cast<long long>(n), reps, t.open_ms,
          t.first_call_ms, t.total_ms, t.first_in_process_ms, 1e6 * t.total_ms / bytes,
          sin_chain ? ",\"ops\":10000,\"target_ms\":10" : "");
      rows.push_back({name, t.graphs, bytes, n, t});
    }
  }
  std::printf("\n%-16s %7s %11s %5s %12s %12s %12s %14s %10s\n", "package", "graphs", "bytes", "n",
              "open+verify", "first call", "total", "first in proc", "ns/byte");
  for (const Row& r : rows) {
    std::printf("%-16s %7zu %11ju %5lld %9.3f ms %9.3f ms %9.3f ms %11.3f ms %10.3f\n",
                r.name.c_str(), r.graphs, r.bytes, static_cast<long long>(r.n), r.t.open_ms,
                r.t.first_call_ms, r.t.total_ms, r.t.first_in_process_ms,
                1e6 * r.t.total_ms / static_cast<double>(r.bytes));
  }
  std::printf(
      "target (ANCHORS.md): the sin chain's open + verify + first call <= 10 ms; ns/byte flat or "
      "falling as packages grow. PyTorch's warm start of 1,000 sins (0.52 s) is quoted from "
      "ANCHORS.md, not measured here\n");
  return 0;
}
