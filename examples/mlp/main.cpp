// Runs the MLP block from its embedded package, on the GPU when there is one,
// on random inputs, and checks it against the reference interpreter.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <kiln/graph.h>

#include "device_buffers.h"
#include "graph_check.h"
#include "mlp_kernels.h"

int main(int argc, char** argv) {
  try {
    // The interpreter sums in double, one product at a time: a few tokens keep
    // the check to a second. `mlp_example N` checks N tokens instead.
    const int64_t tokens = argc > 1 ? std::stoll(argv[1]) : 8;
    std::string why_cpu;
    DeviceBuffers device = DeviceBuffers::detect(&why_cpu);
    kiln::Package& pkg = mlp_kernels::loaded_package();
    std::printf("Kiln MLP example: x [%lld, 1024] -> 4096 -> 1024, bf16, on %s\n\n",
                static_cast<long long>(tokens),
                device.is_cuda() ? device.description().c_str()
                                 : ("the CPU (no GPU: " + why_cpu + ")").c_str());
    std::mt19937_64 rng(2026);
    std::vector<GraphCheck> checks;
    for (const auto& r : kiln::registered_graphs()) {
      checks.push_back(check_graph(pkg, device, kiln::trace(r.name, r.function), {}, tokens, rng));
    }
    const bool ok = print_checks(checks);
    std::printf("\n%s\n", ok ? "mlp: matches the interpreter" : "mlp: MISMATCH");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mlp: %s\n", e.what());
    return 1;
  }
}
