// Runs every quickstart graph from the embedded packages on random inputs, on
// the GPU when there is one, checks each result against the reference
// interpreter, and prints a table. Then shows what fail_on_recompile says
// about a shape the package does not cover.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <kiln/compiler/interpreter.h>
#include <kiln/graph.h>

#include "device_buffers.h"
#include "quickstart_chain_kernels.h"
#include "quickstart_kernels.h"

namespace {

using kiln::compiler::HostTensor;

struct Tensors {
  std::vector<void*> data;
  std::vector<kiln::TensorView> views;
};

Tensors place(DeviceBuffers& device, const std::vector<HostTensor>& tensors) {
  Tensors t;
  for (const auto& h : tensors) {
    t.data.push_back(device.upload(h.to_bytes()));
    t.views.emplace_back(t.data.back(), h.dtype, std::span<const int64_t>(h.shape),
                         std::span<const int64_t>(), device.device());
  }
  return t;
}

std::vector<const DLTensor*> dl(const Tensors& t) {
  std::vector<const DLTensor*> out;
  for (const auto& v : t.views) out.push_back(&v.dl());
  return out;
}

struct Row {
  std::string graph;
  std::string specialization;
  std::string device;
  double us_per_call;
  double max_error;
  bool ok;
};

Row run_graph(kiln::Package& pkg, DeviceBuffers& device, const kiln::ir::Graph& g, int64_t n,
              std::mt19937_64& rng) {
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
  const Tensors in = place(device, inputs);
  const Tensors out = place(device, got_shapes);
  const auto in_dl = dl(in);
  const auto out_dl = dl(out);

  kiln::Graph& graph = pkg.graph(g.name);
  const std::string spec(graph.select(in_dl, out_dl));
  graph.call(in_dl, out_dl, device.stream());  // first call loads the kernels
  device.synchronize();

  std::vector<double> times;
  const auto budget = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  while (times.size() < 5 ||
         (std::chrono::steady_clock::now() - start < budget && times.size() < 1000)) {
    const auto t0 = std::chrono::steady_clock::now();
    graph.call(in_dl, out_dl, device.stream());
    device.synchronize();
    times.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + static_cast<long>(times.size() / 2), times.end());

  Row row{g.name, spec, device.is_cuda() ? "cuda" : "cpu", times[times.size() / 2], 0.0, true};
  for (size_t i = 0; i < want.size(); ++i) {
    const size_t bytes = want[i].to_bytes().size();
    const std::vector<uint8_t> result = device.download(out.data[i], bytes);
    const HostTensor got = HostTensor::from_bytes(want[i].dtype, want[i].shape, result.data());
    row.max_error = std::max(row.max_error, kiln::compiler::max_abs_error(got, want[i]));
    row.ok = row.ok &&
             kiln::compiler::all_close(got, want[i], kiln::compiler::tolerance_for(want[i].dtype));
  }
  return row;
}

}  // namespace

int main() {
  try {
    std::string why_cpu;
    DeviceBuffers gpu = DeviceBuffers::detect(&why_cpu);
    DeviceBuffers host = DeviceBuffers::host();
    kiln::Package& pkg = quickstart_kernels::loaded_package();
    kiln::Package& chain = quickstart_chain_kernels::loaded_package();
    std::printf("Kiln quickstart: %zu graphs from the embedded packages (%zu + %zu bytes)\n",
                pkg.graph_names().size() + chain.graph_names().size(),
                quickstart_kernels::package().size(), quickstart_chain_kernels::package().size());
    if (gpu.is_cuda()) {
      std::printf("device: %s; sin_chain runs on the CPU (its package is CPU-only)\n\n",
                  gpu.description().c_str());
    } else {
      std::printf("device: CPU (no GPU: %s)\n\n", why_cpu.c_str());
    }

    std::mt19937_64 rng(2026);
    std::vector<Row> table;
    for (const auto& r : kiln::registered_graphs()) {
      const kiln::ir::Graph g = kiln::trace(r.name, r.function);
      if (r.name == std::string("sin_chain")) {
        table.push_back(run_graph(chain, host, g, 1000, rng));
      } else {
        table.push_back(run_graph(pkg, gpu, g, 64, rng));
      }
    }
    std::printf("%-14s %-6s %-16s %14s %12s  %s\n", "graph", "device", "specialization",
                "time/call (us)", "max error", "check");
    bool all_ok = true;
    for (const auto& r : table) {
      std::printf("%-14s %-6s %-16s %14.1f %12.3g  %s\n", r.graph.c_str(), r.device.c_str(),
                  r.specialization.c_str(), r.us_per_call, r.max_error, r.ok ? "ok" : "MISMATCH");
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
