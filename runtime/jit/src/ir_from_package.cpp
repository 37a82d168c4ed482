#include "ir_from_package.h"

#include <string>

#include "kiln/error.h"

namespace kiln::jit::detail {
namespace {

[[noreturn]] void corrupt(const fb::GraphEntry& entry, const std::string& what) {
  throw PackageError(ErrorCode::package_corrupt,
                     "kiln: graph '" + entry.name()->str() + "': cannot JIT: " + what);
}

ir::Shape shape_of(const flatbuffers::Vector<const fb::Dim*>* dims) {
  ir::Shape shape;
  if (dims == nullptr) return shape;
  for (const fb::Dim* d : *dims) shape.push_back(ir::Dim{d->value(), d->symbol()});
  return shape;
}

}  // namespace

ir::Graph graph_from_package(const fb::GraphEntry& entry) {
  const fb::IrGraph* stored = entry.ir();
  if (stored == nullptr || stored->nodes() == nullptr) {
    corrupt(entry, "the package stores no IR for it (expected an IrGraph, got none)");
  }
  ir::Graph g;
  g.name = entry.name()->str();
  if (entry.symbols() != nullptr) {
    for (const fb::Symbol* s : *entry.symbols()) {
      ir::SymbolDecl decl;
      decl.name = s->name()->str();
      decl.min = s->min();
      decl.max = s->max();
      if (s->hot() != nullptr) decl.hot.assign(s->hot()->begin(), s->hot()->end());
      decl.divisible_by = s->divisible_by();
      g.symbols.push_back(std::move(decl));
    }
  }
  for (const fb::IrNode* stored_node : *stored->nodes()) {
    ir::Node n;
    const std::optional<ir::Op> op = ir::op_from_name(stored_node->op()->string_view());
    if (!op) {
      corrupt(entry,
              "unknown op '" + stored_node->op()->str() + "' (expected one this Kiln knows)");
    }
    n.op = *op;
    n.dtype = static_cast<DType>(stored_node->dtype());
    n.shape = shape_of(stored_node->dims());
    if (stored_node->inputs() != nullptr) {
      n.inputs.assign(stored_node->inputs()->begin(), stored_node->inputs()->end());
    }
    // Codegen indexes inputs by arity; the open-time validation only checked
    // that each id names an earlier node. concat takes one or more.
    const int arity = ir::op_arity(n.op);
    if (arity >= 0 ? static_cast<int>(n.inputs.size()) != arity : n.inputs.empty()) {
      corrupt(entry, "node " + std::to_string(g.nodes.size()) + " (" + stored_node->op()->str() +
                         ") has " + std::to_string(n.inputs.size()) + " inputs, expected " +
                         (arity >= 0 ? std::to_string(arity) : std::string("one or more")));
    }
    n.scalar = stored_node->scalar();
    n.axis = stored_node->axis();
    n.keepdim = stored_node->keepdim();
    if (stored_node->axes() != nullptr && stored_node->axes()->size() > 0) {
      n.axes.assign(stored_node->axes()->begin(), stored_node->axes()->end());
      // Stored as -1 (see ir_to_fb): the first of `axes`.
      if (ir::is_reduction(n.op) && n.axis == -1) n.axis = n.axes.front();
    }
    if (stored_node->params() != nullptr) {
      n.params.assign(stored_node->params()->begin(), stored_node->params()->end());
    }
    if (ir::is_reduction(n.op)) {
      // Codegen indexes the operand's dims by these axes.
      const size_t rank = g.nodes.at(static_cast<size_t>(n.inputs[0])).shape.size();
      const std::vector<int32_t> axes = ir::reduced_axes(n);
      bool ok = axes.front() == n.axis && (n.axes.empty() || axes.size() >= 2) &&
                (n.op != ir::Op::argmax || axes.size() == 1);
      for (size_t i = 0; i < axes.size(); ++i) {
        ok = ok && axes[i] >= 0 && static_cast<size_t>(axes[i]) < rank &&
             (i == 0 || axes[i - 1] < axes[i]);
      }
      if (!ok) {
        corrupt(entry, "node " + std::to_string(g.nodes.size()) + " (" + stored_node->op()->str() +
                           ") reduces axes that do not fit rank " + std::to_string(rank));
      }
    }
    if (stored_node->name() != nullptr) n.name = stored_node->name()->str();
    g.nodes.push_back(std::move(n));
    // Codegen indexes by a shape op's axis, permutation, slice bounds and
    // its operands' dims: each must agree with the operands, else a kernel
    // would read out of bounds.
    const auto id = static_cast<int32_t>(g.nodes.size() - 1);
    std::string bad = ir::shape_op_error(g, id);
    // A matmul's kernel (and a gemm's strides) follow its operands' shapes.
    if (bad.empty()) bad = ir::matmul_error(g, id);
    if (!bad.empty()) corrupt(entry, bad);
  }
  if (stored->inputs() != nullptr)
    g.inputs.assign(stored->inputs()->begin(), stored->inputs()->end());
  if (stored->outputs() != nullptr) {
    g.outputs.assign(stored->outputs()->begin(), stored->outputs()->end());
  }
  // The manifest validation at open checked every id against the node list.
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    g.nodes.at(static_cast<size_t>(g.inputs[i])).input_index = static_cast<int32_t>(i);
  }
  const size_t output_count = entry.outputs() != nullptr ? entry.outputs()->size() : 0;
  if (output_count != g.outputs.size()) {
    corrupt(entry, "the IR has " + std::to_string(g.outputs.size()) + " outputs, the signature " +
                       std::to_string(output_count));
  }
  for (const fb::TensorSpec* t : *entry.outputs()) g.output_names.push_back(t->name()->str());
  return g;
}

}  // namespace kiln::jit::detail
