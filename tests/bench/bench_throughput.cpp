// CPU throughput of the four fused quickstart graphs at 16384x4096 f32, in
// GB/s moved (bytes read + written once), against this machine's copy
// bandwidth measured in the same run with the same number of threads.
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <kiln/runtime.h>

#include "bench_util.h"
#include "quickstart_kernels.h"

namespace {

constexpr int64_t kRows = 16384;
constexpr int64_t kCols = 4096;

std::vector<float> random_floats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-2.0f, 2.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

double copy_gbs(int threads) {
  const size_t n = static_cast<size_t>(kRows * kCols);
  std::vector<float> a = random_floats(n, 1), b(n);
  auto copy = [&] {
    std::vector<std::thread> pool;
    const size_t chunk = (n + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
    for (int t = 0; t < threads; ++t) {
      const size_t begin = static_cast<size_t>(t) * chunk;
      const size_t end = std::min(n, begin + chunk);
      pool.emplace_back(
          [&, begin, end] { std::memcpy(b.data() + begin, a.data() + begin, (end - begin) * 4); });
    }
    for (auto& th : pool) th.join();
  };
  copy();
  const double s = kiln_bench::median(kiln_bench::time_runs(copy, 5, 1.0, 50));
  return 2.0 * static_cast<double>(n) * 4 / s / 1e9;
}

}  // namespace

int main() {
  const int threads = static_cast<int>(std::thread::hardware_concurrency());
  const double ceiling = copy_gbs(threads);
  const size_t n = static_cast<size_t>(kRows * kCols);
  std::vector<float> x = random_floats(n, 2), y(n);
  std::vector<float> a = random_floats(kCols, 3), b = random_floats(kCols, 4);
  const kiln::TensorView X(x.data(), kiln::DType::f32, {kRows, kCols});
  const kiln::TensorView Y(y.data(), kiln::DType::f32, {kRows, kCols});
  const kiln::TensorView A(a.data(), kiln::DType::f32, {kCols});
  const kiln::TensorView B(b.data(), kiln::DType::f32, {kCols});

  struct Case {
    const char* graph;
    std::function<void()> run;
  };
  const Case cases[] = {
      {"gelu_affine", [&] { quickstart_kernels::gelu_affine(X, A, B, Y); }},
      {"softmax", [&] { quickstart_kernels::softmax(X, Y); }},
      {"layernorm", [&] { quickstart_kernels::layernorm(X, A, B, Y); }},
      {"rmsnorm", [&] { quickstart_kernels::rmsnorm(X, A, Y); }},
  };
  // Bytes moved: x read and y written once; the [4096] vectors are noise.
  const double bytes = 2.0 * static_cast<double>(n) * 4;
  std::printf("{\"bench\":\"cpu_copy\",\"threads\":%d,\"gb_per_s\":%.2f}\n", threads, ceiling);
  std::vector<std::pair<std::string, double>> rows;
  for (const auto& c : cases) {
    c.run();  // load kernels, warm caches
    const double s = kiln_bench::median(kiln_bench::time_runs(c.run, 5, 1.5, 100));
    const double gbs = bytes / s / 1e9;
    rows.emplace_back(c.graph, gbs);
    std::printf(
        "{\"bench\":\"cpu_throughput\",\"graph\":\"%s\",\"shape\":[16384,4096],\"dtype\":\"f32\","
        "\"threads\":%d,\"median_ms\":%.3f,\"gb_per_s\":%.2f,\"copy_gb_per_s\":%.2f,"
        "\"fraction_of_copy\":%.3f}\n",
        c.graph, threads, s * 1e3, gbs, ceiling, gbs / ceiling);
  }
  std::printf("\n%-14s %10s %14s\n", "graph (f32)", "GB/s", "% of copy");
  std::printf("%-14s %10.2f %13.1f%%\n", "copy", ceiling, 100.0);
  for (const auto& [g, gbs] : rows)
    std::printf("%-14s %10.2f %13.1f%%\n", g.c_str(), gbs, 100 * gbs / ceiling);
  return 0;
}
