// Traces every example of docs/graph-api.md (turned into graphs by
// graph_api_examples.py) and checks the dtype and shape each one's comment
// states for its result. A TraceError, a wrong comment or an example that
// no longer compiles fails the test, so the page cannot drift from the API.
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include <kiln/graph.h>

extern const char* const kExpectedOutputs[];

int main() {
  std::map<std::string, std::string> expected;  // graph name -> "f32 [n, 64]"
  for (const char* const* e = kExpectedOutputs; *e != nullptr; ++e) {
    const std::string entry = *e;
    const size_t bar = entry.find('|');
    expected["example_" + entry.substr(0, bar)] = entry.substr(bar + 1);
  }
  int failures = 0;
  int traced = 0;
  for (const kiln::RegisteredGraph& registered : kiln::registered_graphs()) {
    const std::string line = registered.name.substr(registered.name.find('_') + 1);
    try {
      const kiln::ir::Graph g = kiln::trace(registered.name, registered.function);
      ++traced;
      const kiln::ir::Node& out = g.node(g.outputs.front());
      const std::string got =
          std::string(kiln::dtype_name(out.dtype)) + " " + kiln::ir::shape_to_string(g, out.shape);
      const auto want = expected.find(registered.name);
      if (want != expected.end() && want->second != got) {
        std::fprintf(stderr, "docs/graph-api.md:%s: the comment says %s, the graph gives %s\n",
                     line.c_str(), want->second.c_str(), got.c_str());
        ++failures;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "docs/graph-api.md:%s: %s\n", line.c_str(), e.what());
      ++failures;
    }
  }
  if (traced + failures == 0 || expected.empty()) {
    std::fprintf(stderr, "no examples found in docs/graph-api.md\n");
    return 1;
  }
  std::printf("%d examples traced, %zu result comments checked, %d failures\n", traced,
              expected.size(), failures);
  return failures == 0 ? 0 : 1;
}
