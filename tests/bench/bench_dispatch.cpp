// Dispatch cost: a graph with 100 tensor inputs sharing one symbol, called
// with ten shapes in turn (each matching one static specialization), as
// PyTorch's dynamo_guard_eval microbenchmark does. Reports the time per call
// of guards plus selection alone (Graph::select) and of the whole call on
// the CPU (guards, selection, the overlap check and a 100-input kernel over
// 10 to 100 elements).
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <kiln/runtime.h>

#include "bench_util.h"
#include "dispatch_kernels.h"

namespace {

constexpr int kInputs = 100;
constexpr int kShapes = 10;

struct Call {
  int64_t s;
  std::vector<std::vector<float>> storage;  // inputs, then the output
  std::vector<kiln::TensorView> views;
  std::vector<const DLTensor*> inputs;
  std::vector<const DLTensor*> outputs;
};

Call make_call(int64_t s, std::mt19937& rng) {
  Call c;
  c.s = s;
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  c.storage.resize(kInputs + 1);
  for (auto& buffer : c.storage) {
    buffer.resize(static_cast<size_t>(s));
    for (float& v : buffer) v = d(rng);
  }
  const int64_t shape[] = {s};
  for (auto& buffer : c.storage) c.views.emplace_back(buffer.data(), kiln::DType::f32, shape);
  for (int i = 0; i < kInputs; ++i) c.inputs.push_back(&c.views[static_cast<size_t>(i)].dl());
  c.outputs.push_back(&c.views.back().dl());
  return c;
}

}  // namespace

// Usage: bench_dispatch [rounds]   (fewer rounds for a profiler run)
int main(int argc, char** argv) {
  kiln::Package& pkg = dispatch_kernels::loaded_package();
  kiln::Graph& g = pkg.graph("hundred_inputs");
  std::mt19937 rng(7);
  std::vector<Call> calls;
  for (int k = 1; k <= kShapes; ++k) calls.push_back(make_call(10 * k, rng));

  // Each shape must pick its own static specialization, or this measures
  // something else.
  for (Call& c : calls) {
    const std::string want = "s=" + std::to_string(c.s);
    const std::string got(g.select(c.inputs, c.outputs));
    if (got != want) {
      std::fprintf(stderr, "bench_dispatch: s = %lld selected '%s', expected '%s'\n",
                   static_cast<long long>(c.s), got.c_str(), want.c_str());
      return 1;
    }
    g.call(c.inputs, c.outputs);  // loads the kernels
  }

  // Many short runs and their median: this VM has slow phases of a second
  // or two, which a few long runs would each straddle.
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 1000;  // of kShapes calls each
  const bool profiling = argc > 1;
  auto per_call_us = [&](auto&& one) {
    const auto runs = kiln_bench::time_runs(
        [&] {
          for (int r = 0; r < rounds; ++r) {
            for (Call& c : calls) one(c);
          }
        },
        profiling ? 1 : 101, profiling ? 0.0 : 3.0, profiling ? 1 : 2000);
    return kiln_bench::median(runs) / (rounds * kShapes) * 1e6;
  };
  volatile size_t sink = 0;
  const double select_us =
      per_call_us([&](Call& c) { sink = sink + g.select(c.inputs, c.outputs).size(); });
  const double call_us = per_call_us([&](Call& c) { g.call(c.inputs, c.outputs); });

  std::printf(
      "{\"bench\":\"dispatch\",\"inputs\":%d,\"shapes\":%d,\"specializations\":%d,"
      "\"select_us\":%.4f,\"call_us\":%.4f,\"target_select_us\":0.5}\n",
      kInputs, kShapes, kShapes + 1, select_us, call_us);
  std::printf("\n%-44s %10s %10s\n", "100 inputs, 10 shapes cycled", "us/call", "target");
  std::printf("%-44s %10.3f %10s\n", "guards + selection (Graph::select)", select_us, "<= 0.5");
  std::printf("%-44s %10.3f %10s\n", "whole call on the CPU (Graph::call)", call_us, "");
  return 0;
}
