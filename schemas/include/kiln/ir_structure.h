// The index structure of a package's stored IR (kiln.fb.IrGraph), checked
// once for both of its readers: the runtime's manifest validation at open
// and the compiler's IR decoder (kiln/compiler/ir_flatbuffers.h), which the
// JIT reads the IR with. What an op means (its arity, axes, shapes) is the
// decoder's alone; this is what any reader must know before it indexes.
#pragma once

#include <cstdint>
#include <string>

#include "kiln/abi/kiln_package_generated.h"

namespace kiln {

// Why `ir`, of a graph with `symbols` symbols, cannot be indexed, as text
// naming the node ("IR node 3 reads node 7"); "" when every node's dtype is
// known, every dim's symbol is one of the graph's, every operand id names an
// earlier node, and every input and output id names a node.
inline std::string ir_structure_error(const fb::IrGraph& ir, uint32_t symbols) {
  const uint32_t nodes = ir.nodes() != nullptr ? ir.nodes()->size() : 0;
  for (uint32_t n = 0; n < nodes; ++n) {
    const fb::IrNode* node = ir.nodes()->Get(n);
    const std::string at = "IR node " + std::to_string(n);
    if (static_cast<uint8_t>(node->dtype()) > static_cast<uint8_t>(fb::DType::MAX)) {
      return at + " has an unknown dtype";
    }
    if (const auto* dims = node->dims()) {
      for (uint32_t d = 0; d < dims->size(); ++d) {
        const int32_t s = dims->Get(d)->symbol();
        if (s >= 0 && static_cast<uint32_t>(s) >= symbols) {
          return at + " dim " + std::to_string(d) + " names symbol " + std::to_string(s) + " of " +
                 std::to_string(symbols);
        }
      }
    }
    if (const auto* inputs = node->inputs()) {
      for (const int32_t input : *inputs) {
        if (input < 0 || static_cast<uint32_t>(input) >= n) {
          return at + " reads node " + std::to_string(input);
        }
      }
    }
  }
  for (const auto* ids : {ir.inputs(), ir.outputs()}) {
    if (ids == nullptr) continue;
    for (const int32_t id : *ids) {
      if (id < 0 || static_cast<uint32_t>(id) >= nodes) {
        return ids == ir.inputs() ? "IR names an unknown input node"
                                  : "IR names an unknown output node";
      }
    }
  }
  return "";
}

}  // namespace kiln
