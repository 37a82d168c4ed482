#include "graph_check.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <kiln/compiler/interpreter.h>
#include <kiln/graph.h>
#include <kiln/tensor_view.h>

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

}  // namespace

GraphCheck check_graph(kiln::Package& package, DeviceBuffers& device, const kiln::ir::Graph& g,
                       const std::map<std::string, int64_t>& sizes, int64_t default_size,
                       std::mt19937_64& rng) {
  std::vector<HostTensor> inputs;
  for (int32_t id : g.inputs) {
    const auto& node = g.node(id);
    std::vector<int64_t> shape;
    for (const auto& d : node.shape) {
      if (d.is_constant()) {
        shape.push_back(d.value);
        continue;
      }
      const auto it = sizes.find(g.symbols[static_cast<size_t>(d.sym)].name);
      shape.push_back(it != sizes.end() ? it->second : default_size);
    }
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

  kiln::Graph& graph = package.graph(g.name);
  const std::string spec(graph.select(in_dl, out_dl));
  graph.call(in_dl, out_dl, device.stream());  // the first call loads the kernels
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

  GraphCheck check{g.name, spec, device.is_cuda() ? "cuda" : "cpu", times[times.size() / 2],
                   0.0,    true};
  for (size_t i = 0; i < want.size(); ++i) {
    const size_t bytes = want[i].to_bytes().size();
    const std::vector<uint8_t> result = device.download(out.data[i], bytes);
    const HostTensor got = HostTensor::from_bytes(want[i].dtype, want[i].shape, result.data());
    check.max_error = std::max(check.max_error, kiln::compiler::max_abs_error(got, want[i]));
    check.ok = check.ok && kiln::compiler::all_close(got, want[i],
                                                     kiln::compiler::tolerance_for(want[i].dtype));
  }
  return check;
}

bool print_checks(const std::vector<GraphCheck>& checks) {
  std::printf("%-14s %-6s %-16s %14s %12s  %s\n", "graph", "device", "specialization",
              "time/call (us)", "max error", "check");
  bool all_ok = true;
  for (const auto& c : checks) {
    std::printf("%-14s %-6s %-16s %14.1f %12.3g  %s\n", c.graph.c_str(), c.device.c_str(),
                c.specialization.c_str(), c.us_per_call, c.max_error, c.ok ? "ok" : "MISMATCH");
    all_ok = all_ok && c.ok;
  }
  return all_ok;
}

int check_registered_graphs(const char* name, const std::string& what, kiln::Package& package,
                            const std::map<std::string, int64_t>& sizes, int64_t default_size) {
  try {
    std::string why_cpu;
    DeviceBuffers device = DeviceBuffers::detect(&why_cpu);
    std::printf(
        "Kiln %s example: %s, on %s\n\n", name, what.c_str(),
        device.is_cuda() ? device.description().c_str() : ("the CPU (" + why_cpu + ")").c_str());
    std::mt19937_64 rng(2026);
    std::vector<GraphCheck> checks;
    for (const auto& r : kiln::registered_graphs()) {
      checks.push_back(
          check_graph(package, device, kiln::trace(r.name, r.function), sizes, default_size, rng));
    }
    const bool ok = print_checks(checks);
    std::printf("\n%s: %s\n", name, ok ? "matches the interpreter" : "MISMATCH");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}
