// Runs causal attention from its embedded package, on the GPU when there is one,
// on random inputs, and checks it against the reference interpreter.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <kiln/graph.h>

#include "attention_kernels.h"
#include "device_buffers.h"
#include "graph_check.h"

int main(int argc, char** argv) {
  try {
    // The interpreter sums in double, one product at a time: a short sequence
    // keeps the check to a second. `attention_example N B` checks a sequence
    // of N in a batch of B instead.
    const int64_t tokens = argc > 1 ? std::stoll(argv[1]) : 40;
    const int64_t batch = argc > 2 ? std::stoll(argv[2]) : 2;
    std::string why_cpu;
    DeviceBuffers device = DeviceBuffers::detect(&why_cpu);
    kiln::Package& pkg = attention_kernels::loaded_package();
    std::printf("Kiln attention example: causal, q k v [%lld, %lld, 128], bf16, on %s\n\n",
                static_cast<long long>(batch), static_cast<long long>(tokens),
                device.is_cuda() ? device.description().c_str()
                                 : ("the CPU (no GPU: " + why_cpu + ")").c_str());
    std::mt19937_64 rng(2026);
    std::vector<GraphCheck> checks;
    for (const auto& r : kiln::registered_graphs()) {
      checks.push_back(
          check_graph(pkg, device, kiln::trace(r.name, r.function), {{"b", batch}}, tokens, rng));
    }
    const bool ok = print_checks(checks);
    std::printf("\n%s\n", ok ? "attention: matches the interpreter" : "attention: MISMATCH");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention: %s\n", e.what());
    return 1;
  }
}
