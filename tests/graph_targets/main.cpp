// Runs the graphs of graph_targets_kernels (graphs.cpp) and checks which
// targets the manifest gives each, then that each graph runs on this CPU
// when one of its targets does, and otherwise fails with the typed error
// naming its targets. Run on the host and under KILN_CPU_LEVEL=x86-64
// (CMakeLists.txt). Exits 0 with "graph_targets: ok" when every check passes.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <kiln/package_reader.h>

#include "graph_targets_kernels.h"

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what.c_str());
  if (!ok) ++failures;
}

std::string targets_of(const kiln::fb::Manifest& m, std::string_view graph) {
  const kiln::fb::GraphEntry* g = m.graphs()->LookupByKey(std::string(graph).c_str());
  std::string text;
  if (g == nullptr || g->targets() == nullptr) return "(absent)";
  for (uint32_t t : *g->targets()) {
    if (!text.empty()) text += ',';
    text += m.targets()->Get(t)->name()->string_view();
  }
  return text;
}

// Calls `graph` on 5 elements; "" when it ran and matched scale * x + shift,
// else what went wrong (the kiln::Error's message when it threw).
std::string run(void (*graph)(const kiln::TensorView&, const kiln::TensorView&, void*), float scale,
                float shift, kiln::ErrorCode* code) {
  std::vector<float> x = {0.0f, 1.0f, -2.0f, 3.5f, 100.0f};
  std::vector<float> y(x.size(), 0.0f);
  const int64_t n = static_cast<int64_t>(x.size());
  try {
    graph(kiln::TensorView(x.data(), kiln::DType::f32, {n}),
          kiln::TensorView(y.data(), kiln::DType::f32, {n}), nullptr);
  } catch (const kiln::Error& e) {
    *code = e.code();
    return e.what();
  }
  for (size_t i = 0; i < x.size(); ++i) {
    if (y[i] != x[i] * scale + shift) return "wrong value at " + std::to_string(i);
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  // "v3": this CPU runs x86-64-v3; "x86-64": KILN_CPU_LEVEL lowers it to x86-64.
  const std::string level = argc > 1 ? argv[1] : "";
  if (level != "v3" && level != "x86-64") {
    std::fprintf(stderr, "usage: graph_targets_check v3|x86-64\n");
    return 2;
  }
  const kiln::PackageReader reader =
      kiln::PackageReader::open_memory(graph_targets_kernels::package());
  const kiln::fb::Manifest& m = reader.manifest();
  check(targets_of(m, "low") == "cpu:x86-64", "low's targets: " + targets_of(m, "low"));
  check(targets_of(m, "high") == "cpu:x86-64-v3", "high's targets: " + targets_of(m, "high"));
  check(targets_of(m, "both") == "cpu:x86-64,cpu:x86-64-v3",
        "both's targets: " + targets_of(m, "both"));

  kiln::ErrorCode code{};
  std::string low = run(&graph_targets_kernels::low, 2.0f, 1.0f, &code);
  check(low.empty(), "low runs its cpu:x86-64 code on this CPU " + low);
  std::string both = run(&graph_targets_kernels::both, -1.0f, 0.5f, &code);
  check(both.empty(), "both runs " + both);
  std::string high = run(&graph_targets_kernels::high, 3.0f, -1.0f, &code);
  if (level == "v3") {
    check(high.empty(), "high runs its cpu:x86-64-v3 code " + high);
  } else {
    check(code == kiln::ErrorCode::kernel_load_failed &&
              high.find("graph 'high' is built for cpu:x86-64-v3") != std::string::npos &&
              high.find("this CPU is x86-64,") != std::string::npos,
          "high on an x86-64 CPU is a kernel_load_failed error naming its targets: " + high);
  }
  if (failures > 0) {
    std::printf("graph_targets: %d checks failed\n", failures);
    return 1;
  }
  std::printf("graph_targets: ok\n");
  return 0;
}
