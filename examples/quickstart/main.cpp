// Runs every quickstart graph from the embedded packages on random inputs, on
// the GPU when there is one, checks each result against the reference
// interpreter, and prints a table. Then shows what fail_on_recompile says
// about a shape the package does not cover.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <kiln/graph.h>

#include "device_buffers.h"
#include "graph_check.h"
#include "quickstart_chain_kernels.h"
#include "quickstart_kernels.h"

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
      std::printf("device: CPU (%s)\n\n", why_cpu.c_str());
    }

    std::mt19937_64 rng(2026);
    std::vector<GraphCheck> table;
    for (const auto& r : kiln::registered_graphs()) {
      const kiln::ir::Graph g = kiln::trace(r.name, r.function);
      if (r.name == std::string("sin_chain")) {
        table.push_back(check_graph(chain, host, g, {}, 1000, rng));
      } else {
        table.push_back(check_graph(pkg, gpu, g, {}, 64, rng));
      }
    }
    bool all_ok = print_checks(table);

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
