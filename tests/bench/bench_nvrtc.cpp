// NVRTC's compile time for the fallback JIT's CUDA path, on this machine's
// CPU (no GPU is used): every kernel of a graph lowered with
// CudaCodegenOptions::nvrtc and compiled to sm_90 cubins by build_cubins,
// for the quickstart's graphs (examples/quickstart/graphs.cpp), the JIT
// tests' `norms` graph (layernorm and softmax of one input: one kernel) and
// `row_stats` (tests/gpu's reduce_keepdim_false: four kernels, which
// build_cubins compiles on several threads). Each graph twice: static sizes (every
// symbol 64, a hot-size miss) and dynamic ones (every symbol read at run
// time, the JIT's general specialization). Lowering is timed apart from
// NVRTC. Wall times with build_cubins' threads and with one, and the
// process's CPU time of the one-thread compile, which other work on a shared
// machine inflates far less than wall time. One JSON line per row, then a
// table; medians of RUNS runs.
// Usage: bench_nvrtc [RUNS] (default 7)
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_util.h"
#include "kiln/compiler/cuda_codegen.h"
#include "kiln/compiler/ir.h"
#include "kiln/graph.h"
#include "nvrtc_build.h"  // runtime/jit/src
#include "nvrtc_library.h"
#include "test_support/jit_test_graph.h"  // jit_norms

namespace {

constexpr int kArch = 90;

struct Row {
  std::string graph;
  const char* sizes;
  size_t kernels;
  double lower_ms;
  double compile_ms;
  double compile_1thread_ms;
  double cpu_1thread_ms;
};

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

kiln::Outputs row_stats() {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20});
  auto x = kiln::input("x", kiln::f32, {n, 129});
  auto s = kiln::sum(x, -1);
  return kiln::Outputs({s, kiln::mean(x, -1), kiln::max(x, -1), kiln::min(x, -1), kiln::sum(s, -1),
                        kiln::max(kiln::mean(x, -1), -1)})
      .named({"s", "mean", "mx", "mn", "total", "max_of_means"});
}

kiln::compiler::CudaLoweredGraph lower(const kiln::ir::Graph& g, int64_t value) {
  kiln::compiler::CudaCodegenOptions o;
  o.entry_prefix = "kiln_bench_" + g.name;
  o.nvrtc = true;
  return kiln::compiler::lower_cuda(g, kiln::ir::SymbolValues(g.symbols.size(), value), o);
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
  std::vector<kiln::ir::Graph> graphs;
  for (const auto& r : kiln::registered_graphs()) {
    graphs.push_back(kiln::ir::canonicalize(kiln::trace(r.name, r.function)));
  }
  graphs.push_back(kiln::ir::canonicalize(kiln::trace("norms", &kiln_test::jit_norms)));
  graphs.push_back(kiln::ir::canonicalize(kiln::trace("row_stats", &row_stats)));

  // Loading NVRTC, and its first compile (which maps libnvrtc-builtins),
  // are paid once per process: timed apart from the rows.
  double t0 = kiln_bench::now_seconds();
  const auto& nvrtc = kiln::jit::detail::NvrtcLibrary::get("bench");
  const double load_ms = (kiln_bench::now_seconds() - t0) * 1e3;
  const auto warm = lower(graphs.front(), 64);
  t0 = kiln_bench::now_seconds();
  kiln::jit::detail::build_cubins(warm.kernels, kArch, graphs.front().name);
  const double first_ms = (kiln_bench::now_seconds() - t0) * 1e3;
  std::printf(
      "{\"bench\":\"nvrtc_load\",\"nvrtc\":\"%s\",\"load_ms\":%.2f,\"first_compile_ms\":%.1f}\n",
      nvrtc.version().c_str(), load_ms, first_ms);

  std::vector<Row> rows;
  for (const auto& g : graphs) {
    for (const int64_t value : {int64_t{64}, int64_t{-1}}) {
      Row row{g.name, value < 0 ? "dynamic" : "static", 0, 0, 0, 0, 0};
      kiln::compiler::CudaLoweredGraph lowered;
      row.lower_ms =
          kiln_bench::median(kiln_bench::time_runs([&] { lowered = lower(g, value); }, runs, 0.0)) *
          1e3;
      row.kernels = lowered.kernels.size();
      auto compile = [&](unsigned threads) {
        return kiln_bench::median(kiln_bench::time_runs(
                   [&] {
                     kiln::jit::detail::build_cubins(lowered.kernels, kArch, g.name, threads);
                   },
                   runs, 0.0)) *
               1e3;
      };
      row.compile_ms = compile(0);
      row.compile_1thread_ms = compile(1);
      std::vector<double> cpu;
      for (int r = 0; r < runs; ++r) {
        const double c0 = cpu_seconds();
        kiln::jit::detail::build_cubins(lowered.kernels, kArch, g.name, 1);
        cpu.push_back(cpu_seconds() - c0);
      }
      row.cpu_1thread_ms = kiln_bench::median(cpu) * 1e3;
      std::printf(
          "{\"bench\":\"nvrtc_compile\",\"graph\":\"%s\",\"sizes\":\"%s\",\"arch\":\"sm_%d\","
          "\"kernels\":%zu,\"runs\":%d,\"lower_ms\":%.2f,\"compile_ms\":%.1f,"
          "\"compile_1thread_ms\":%.1f,\"cpu_1thread_ms\":%.1f,\"nvrtc\":\"%s\"}\n",
          row.graph.c_str(), row.sizes, kArch, row.kernels, runs, row.lower_ms, row.compile_ms,
          row.compile_1thread_ms, row.cpu_1thread_ms, nvrtc.version().c_str());
      rows.push_back(row);
    }
  }

  std::printf("\n%s (%s), sm_%d, medians of %d runs; load %.1f ms, first compile %.0f ms\n",
              nvrtc.version().c_str(), nvrtc.path.c_str(), kArch, runs, load_ms, first_ms);
  std::printf("%-14s %-8s %7s %9s %11s %12s %11s\n", "graph", "sizes", "kernels", "lower ms",
              "compile ms", "1 thread ms", "1 thr CPU ms");
  for (const Row& r : rows) {
    std::printf("%-14s %-8s %7zu %9.2f %11.1f %12.1f %11.1f\n", r.graph.c_str(), r.sizes, r.kernels,
                r.lower_ms, r.compile_ms, r.compile_1thread_ms, r.cpu_1thread_ms);
  }
  return 0;
}
