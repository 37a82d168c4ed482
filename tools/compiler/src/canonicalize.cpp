#include <vector>

#include "kiln/compiler/ir.h"

namespace kiln::ir {

// Post-order walk from the outputs, operands in order: the resulting order
// depends only on the graph's structure, not on the order it was traced in.
Graph canonicalize(const Graph& g) {
  Graph out;
  out.name = g.name;
  out.symbols = g.symbols;
  out.output_names = g.output_names;
  out.declared_targets = g.declared_targets;
  std::vector<int32_t> remap(g.nodes.size(), -1);

  auto emit = [&](int32_t id) {
    Node n = g.node(id);
    for (auto& in : n.inputs) in = remap[static_cast<size_t>(in)];
    remap[static_cast<size_t>(id)] = static_cast<int32_t>(out.nodes.size());
    out.nodes.push_back(std::move(n));
  };

  // Inputs keep declaration order, used or not: they are the call signature.
  for (int32_t id : g.inputs) emit(id);

  // Iterative DFS (a 10,000-op chain would overflow a recursive one).
  std::vector<std::pair<int32_t, size_t>> stack;
  for (int32_t root : g.outputs) {
    if (remap[static_cast<size_t>(root)] >= 0) continue;
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
      auto& [id, next] = stack.back();
      const Node& n = g.node(id);
      if (next < n.inputs.size()) {
        const int32_t child = n.inputs[next++];
        if (remap[static_cast<size_t>(child)] < 0) stack.emplace_back(child, 0);
        continue;
      }
      if (remap[static_cast<size_t>(id)] < 0) emit(id);
      stack.pop_back();
    }
  }

  for (int32_t id : g.inputs) out.inputs.push_back(remap[static_cast<size_t>(id)]);
  for (int32_t id : g.outputs) out.outputs.push_back(remap[static_cast<size_t>(id)]);
  return out;
}

}  // namespace kiln::ir
