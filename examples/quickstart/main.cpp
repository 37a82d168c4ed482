// Runs every quickstart graph from the embedded package on random inputs,
// checks each result against the reference interpreter, and prints a table.
// Then shows what fail_on_recompile says about a shape the package does not
// cover.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <kiln/compiler/interpreter.h>
#include <kiln/graph.h>

#include "quickstart_kernels.h"

namespace {

using kiln::compiler::HostTensor;

struct Buffers {
  std::vector<std::vector<uint8_t>> storage;
  std::vector<kiln::TensorView> views;
};

Buffers make_buffers(const std::vector<HostTensor>& tensors) {
  Buffers b;
  b.storage.reserve(tensors.size());
  for (const auto& t : tensors) b.storage.push_back(t.to_bytes());
  for (size_t i = 0; i < tensors.size(); ++i) {
    b.views.emplace_back(b.storage[i].data(), tensors[i].dtype,
                         std::span<const int64_t>(tensors[i].shape));
  }
  return b;
}

std::vector<const DLTensor*> dl(const Buffers& b) {
  std::vector<const DLTensor*> out;
  for (const auto& v : b.views) out.push_back(&v.dl());
  return out;
}

struct Row {
  std::string graph;
  std::string specialization;
  double us_per_call;
  double max_error;
  bool ok;
};

Row run_graph(kiln::Package& pkg, const kiln::ir::Graph& g, int64_t n, std::mt19937_64& rng) {
  std::vector<HostTensor> inputs;
  for (int32_t id : g.inputs) {
    const auto& node = g.node(id);
    std::vector<int64_t> shape;
    for (const auto& d : node.shape) shape.push_back(d.is_constant() ? d.value : n);
    inputs.push_back(kiln::compiler::random_tensor(node.dtype, shape, rng));
  }
  const std::vector<HostTensor> want = kiln::compiler::interpret(g, inputs);
  std::vector<HostTensor> got_shapes;
  got_shapes.reserve(want.size());
  for (const auto& w : want) {
    got_shapes.push_back(HostTensor{w.dtype, w.shape, std::vector<double>(w.values.size(), 0.0)});
  }
  Buffers in = make_buffers(inputs);
  Buffers out = make_buffers(got_shapes);
  const auto in_dl = dl(in);
  const auto out_dl = dl(out);

  kiln::Graph& graph = pkg.graph(g.name);
  const std::string spec(graph.select(in_dl, out_dl));
  graph.call(in_dl, out_dl);  // first call loads the kernels

  std::vector<double> times;
  const auto budget = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  while (times.size() < 5 ||
         (std::chrono::steady_clock::now() - start < budget && times.size() < 1000)) {
    const auto t0 = std::chrono::steady_clock::now();
    graph.call(in_dl, out_dl);
    times.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + static_cast<long>(times.size() / 2), times.end());

  Row row{g.name, spec, times[times.size() / 2], 0.0, true};
  for (size_t i = 0; i < want.size(); ++i) {
    const HostTensor got =
        HostTensor::from_bytes(want[i].dtype, want[i].shape, out.storage[i].data());
    row.max_error = std::max(row.max_error, kiln::compiler::max_abs_error(got, want[i]));
    row.ok = row.ok &&
             kiln::compiler::all_close(got, want[i], kiln::compiler::tolerance_for(want[i].dtype));
  }
  return row;
}

}  // namespace

int main() {
  try {
    kiln::Package& pkg = quickstart_kernels::loaded_package();
    std::printf(
        "Kiln quickstart: %zu graphs from the embedded package (%zu bytes), device: CPU\n\n",
        pkg.graph_names().size(), quickstart_kernels::package().size());

    std::mt19937_64 rng(2026);
    const std::map<std::string, int64_t> rows = {{"sin_chain", 1000}};
    std::vector<Row> table;
    for (const auto& r : kiln::registered_graphs()) {
      const kiln::ir::Graph g = kiln::trace(r.name, r.function);
      const int64_t n = rows.count(r.name) ? rows.at(r.name) : 64;
      table.push_back(run_graph(pkg, g, n, rng));
    }
    std::printf("%-14s %-16s %14s %12s  %s\n", "graph", "specialization", "time/call (us)",
                "max error", "check");
    bool all_ok = true;
    for (const auto& r : table) {
      std::printf("%-14s %-16s %14.1f %12.3g  %s\n", r.graph.c_str(), r.specialization.c_str(),
                  r.us_per_call, r.max_error, r.ok ? "ok" : "MISMATCH");
      all_ok = all_ok && r.ok;
    }

    // A deployment that must never compile at run time pins the stance; a
    // shape outside the package is then an error that says why.
    std::printf("\nfail_on_recompile, rmsnorm with x of shape [64, 4095]:\n");
    pkg.set_stance(kiln::Stance::fail_on_recompile);
    std::vector<float> x(64 * 4095, 1.0f), w(4096, 1.0f), y(64 * 4095);
    try {
      quickstart_kernels::rmsnorm(kiln::TensorView(x.data(), kiln::DType::f32, {64, 4095}),
                                  kiln::TensorView(w.data(), kiln::DType::f32, {4096}),
                                  kiln::TensorView(y.data(), kiln::DType::f32, {64, 4095}));
      std::printf("  unexpected: the call ran\n");
      all_ok = false;
    } catch (const kiln::RecompileError& e) {
      std::printf("%s\n", e.what());
    }
    std::printf("\n%s\n",
                all_ok ? "quickstart: all graphs match the interpreter" : "quickstart: MISMATCH");
    return all_ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quickstart: %s\n", e.what());
    return 1;
  }
}
