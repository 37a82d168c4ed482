// The CPU JIT's costs on this machine, for the quickstart's rmsnorm graph
// over [n, 4096]: a compile (memory cache only, a fresh JIT each run), a
// disk-cache hit (a fresh JIT on a warm cache directory: what a second process
// pays), and a call served from the memory cache. Medians of several runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "kiln/graph.h"
#include "kiln/jit/cpu_jit.h"
#include "kiln/runtime.h"
#include "test_support/jit_test_graph.h"  // ir_only_package: every call misses

namespace {

constexpr int64_t kWidth = 4096;
constexpr int64_t kRows = 64;

kiln::Outputs rmsnorm() {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20});
  auto x = kiln::input("x", kiln::f32, {n, kWidth});
  auto w = kiln::input("w", kiln::f32, {kWidth});
  return kiln::outputs(kiln::rmsnorm(x, w));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  const auto bytes = kiln_test::ir_only_package(kiln::trace("rmsnorm", &rmsnorm));
  kiln::Package pkg = kiln::Package::open_memory(
      std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
  std::vector<float> x(kRows * kWidth, 0.5f), w(kWidth, 1.5f), y(kRows * kWidth);
  auto call = [&] {
    pkg.graph("rmsnorm").call({kiln::TensorView(x.data(), kiln::DType::f32, {kRows, kWidth}),
                               kiln::TensorView(w.data(), kiln::DType::f32, {kWidth})},
                              {kiln::TensorView(y.data(), kiln::DType::f32, {kRows, kWidth})});
  };
  auto seconds = [](auto start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "kiln-bench-jit";
  std::filesystem::remove_all(dir);

  std::vector<double> compile, disk, memory;
  for (int r = 0; r < runs; ++r) {
    kiln::jit::CpuJit jit({.disk_cache = false});
    kiln::set_jit_compiler(&jit);
    const auto start = std::chrono::steady_clock::now();
    call();
    compile.push_back(seconds(start));
  }
  {
    kiln::jit::CpuJit warm({.cache_dir = dir});
    kiln::set_jit_compiler(&warm);
    call();
  }
  for (int r = 0; r < runs; ++r) {
    kiln::jit::CpuJit jit({.cache_dir = dir});
    kiln::set_jit_compiler(&jit);
    auto start = std::chrono::steady_clock::now();
    call();
    disk.push_back(seconds(start));
    if (jit.counters().disk_hits != 1) std::fprintf(stderr, "bench_jit: expected a disk hit\n");
    for (int c = 0; c < 20; ++c) {
      start = std::chrono::steady_clock::now();
      call();
      memory.push_back(seconds(start));
    }
  }
  kiln::set_jit_compiler(nullptr);
  std::filesystem::remove_all(dir);
  std::printf("rmsnorm [%lld, %lld] f32, %d runs\n", static_cast<long long>(kRows),
              static_cast<long long>(kWidth), runs);
  std::printf("  JIT compile (miss, no disk cache): median %.1f ms\n", median(compile) * 1e3);
  std::printf("  disk-cache hit (fresh JIT, first call): median %.2f ms\n", median(disk) * 1e3);
  std::printf("  memory-cache hit (call): median %.1f us\n", median(memory) * 1e6);
  return 0;
}
