// Builds a package of N graphs through the real generator, for the load
// benchmark: each graph is y = x * c + 1 over f32[n] with its own c, so
// each has its own kernel (one general specialization, one target).
// Usage: bench_many_graphs N OUT_DIR CLANGXX NINJA
// Prints one JSON line with the build time and the package's size; "cold"
// says whether OUT_DIR's work directory was new (an incremental rebuild
// compiles nothing and takes seconds).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <kiln/compiler/generator.h>
#include <kiln/graph.h>

namespace {

int graph_index = 0;  // read by the graph function while it is traced

kiln::Outputs scale_graph() {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 24});
  auto x = kiln::input("x", kiln::f32, {n});
  return kiln::outputs(x * (1.0f + 0.001f * static_cast<float>(graph_index)) + 1.0f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s N OUT_DIR CLANGXX NINJA\n", argv[0]);
    return 2;
  }
  const int count = std::atoi(argv[1]);
  const bool cold = !std::filesystem::exists(std::string(argv[2]) + "/work");
  const auto start = std::chrono::steady_clock::now();
  std::vector<kiln::ir::Graph> graphs;
  graphs.reserve(static_cast<size_t>(count));
  for (graph_index = 0; graph_index < count; ++graph_index) {
    graphs.push_back(kiln::trace(std::string("g").append(std::to_string(graph_index)), &scale_graph));
  }
  kiln::compiler::GeneratorOptions o;
  o.name = std::string("graphs_").append(std::to_string(count));
  o.targets = {"cpu:x86-64"};
  o.out_dir = argv[2];
  o.work_dir = std::string(argv[2]) + "/work";
  o.cxx = argv[3];
  o.ninja = argv[4];
  try {
    const kiln::compiler::GeneratorSummary s = kiln::compiler::run_generator(o, graphs);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "{\"bench\":\"many_graphs_build\",\"graphs\":%d,\"kernels\":%zu,\"package_bytes\":%llu,"
        "\"cold\":%s,\"seconds\":%.2f,\"targets\":1}\n",
        count, s.kernels, static_cast<unsigned long long>(s.package_bytes), cold ? "true" : "false",
        seconds);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
