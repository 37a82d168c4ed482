// The traced IR to and from the package's FlatBuffers, in one place: the
// generator stores a graph with graph_entry_ir() (kiln/compiler/
// manifest_builder.h adds the rest of the entry), and the JIT reads it back
// with ir_from_fb(), so what the JIT lowers is what the generator lowered.
// The reader trusts nothing of the stored IR: it checks it as a package from
// anywhere must be checked, and the round trip is tested
// (tests/unit/test_ir_flatbuffers.cpp).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/compiler/ir.h"

namespace kiln::compiler {

// Stored IR that cannot be read back into a graph codegen may lower: none
// stored, an op this build does not know, an id out of range, a node whose
// arity, axes or shape do not agree with its operands. what() names the
// node and what was expected ("node 4 (concat) has 0 inputs, expected one
// or more"); the caller adds which graph and package.
class IrFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The nodes, inputs and outputs of `g` as GraphEntry.ir stores them. A
// reduction over several axes stores axis -1 and its `axes`, so that a
// reader from before `axes` refuses the node instead of reducing one axis.
std::unique_ptr<fb::IrGraphT> ir_to_fb(const ir::Graph& g);

// A graph entry holding what ir_from_fb() reads: the graph's name, symbols,
// input and output specs and IR; no structure hash, targets or
// specializations.
std::unique_ptr<fb::GraphEntryT> graph_entry_ir(const ir::Graph& g);

// The graph stored in `entry` (a verified FlatBuffer), as traced: every
// field graph_entry_ir() stores, and each input node's input_index.
// Throws IrFormatError.
ir::Graph ir_from_fb(const fb::GraphEntry& entry);

}  // namespace kiln::compiler
