#include "kiln/compiler/ir_flatbuffers.h"

#include <string>

#include "kiln/ir_structure.h"

namespace kiln::compiler {
namespace {

std::vector<fb::Dim> dims_to_fb(const ir::Shape& s) {
  std::vector<fb::Dim> out;
  out.reserve(s.size());
  for (const auto& d : s) out.emplace_back(d.is_constant() ? d.value : 0, d.sym);
  return out;
}

std::unique_ptr<fb::TensorSpecT> tensor_spec(const std::string& name, const ir::Node& n) {
  auto t = std::make_unique<fb::TensorSpecT>();
  t->name = name;
  t->dtype = static_cast<fb::DType>(n.dtype);
  t->dims = dims_to_fb(n.shape);
  return t;
}

ir::Shape shape_of(const flatbuffers::Vector<const fb::Dim*>* dims) {
  ir::Shape shape;
  if (dims == nullptr) return shape;
  for (const fb::Dim* d : *dims) shape.push_back(ir::Dim{d->value(), d->symbol()});
  return shape;
}

template <class T>
uint32_t count(const flatbuffers::Vector<T>* v) {
  return v != nullptr ? v->size() : 0;
}

std::string node_text(size_t id, const fb::IrNode& stored) {
  return "node " + std::to_string(id) + " (" + stored.op()->str() + ")";
}

// Codegen indexes a reduction's operand dims by its axes: each in range,
// sorted and distinct, the first equal to `axis`, two or more when `axes`
// is set, and one for argmax.
bool reduction_axes_fit(const ir::Node& n, size_t rank) {
  const std::vector<int32_t> axes = ir::reduced_axes(n);
  bool ok = axes.front() == n.axis && (n.axes.empty() || axes.size() >= 2) &&
            (n.op != ir::Op::argmax || axes.size() == 1);
  for (size_t i = 0; i < axes.size(); ++i) {
    ok = ok && axes[i] >= 0 && static_cast<size_t>(axes[i]) < rank &&
         (i == 0 || axes[i - 1] < axes[i]);
  }
  return ok;
}

ir::Node node_from_fb(const ir::Graph& g, const fb::IrNode& stored) {
  const size_t id = g.nodes.size();
  ir::Node n;
  const std::optional<ir::Op> op = ir::op_from_name(stored.op()->string_view());
  if (!op)
    throw IrFormatError("unknown op '" + stored.op()->str() + "' (expected one this Kiln knows)");
  n.op = *op;
  n.dtype = static_cast<DType>(stored.dtype());
  n.shape = shape_of(stored.dims());
  if (stored.inputs() != nullptr) n.inputs.assign(stored.inputs()->begin(), stored.inputs()->end());
  // Codegen indexes inputs by arity. concat takes one or more.
  const int arity = ir::op_arity(n.op);
  if (arity >= 0 ? static_cast<int>(n.inputs.size()) != arity : n.inputs.empty()) {
    throw IrFormatError(node_text(id, stored) + " has " + std::to_string(n.inputs.size()) +
                        " inputs, expected " +
                        (arity >= 0 ? std::to_string(arity) : std::string("one or more")));
  }
  n.scalar = stored.scalar();
  n.axis = stored.axis();
  n.keepdim = stored.keepdim();
  if (count(stored.axes()) > 0) {
    n.axes.assign(stored.axes()->begin(), stored.axes()->end());
    // Stored as -1 (see ir_to_fb): the first of `axes`.
    if (ir::is_reduction(n.op) && n.axis == -1) n.axis = n.axes.front();
  }
  if (stored.params() != nullptr) n.params.assign(stored.params()->begin(), stored.params()->end());
  if (ir::is_reduction(n.op)) {
    const size_t rank = g.node(n.inputs[0]).shape.size();
    if (!reduction_axes_fit(n, rank)) {
      throw IrFormatError(node_text(id, stored) + " reduces axes that do not fit rank " +
                          std::to_string(rank));
    }
  }
  if (stored.name() != nullptr) n.name = stored.name()->str();
  return n;
}

}  // namespace

std::unique_ptr<fb::IrGraphT> ir_to_fb(const ir::Graph& g) {
  auto out = std::make_unique<fb::IrGraphT>();
  for (const auto& n : g.nodes) {
    auto node = std::make_unique<fb::IrNodeT>();
    node->op = std::string(ir::op_name(n.op));
    node->dtype = static_cast<fb::DType>(n.dtype);
    node->dims = dims_to_fb(n.shape);
    node->inputs = n.inputs;
    node->scalar = n.scalar;
    // A multi-axis reduction stores axis -1 and its `axes`: a reader from
    // before `axes` then refuses the node (no such axis) instead of reducing
    // one axis of it. (A permute's `axes` are its permutation.)
    node->axis = ir::is_reduction(n.op) && !n.axes.empty() ? -1 : n.axis;
    node->keepdim = n.keepdim;
    node->name = n.name;
    node->axes = n.axes;
    node->params = n.params;
    out->nodes.push_back(std::move(node));
  }
  out->inputs = g.inputs;
  out->outputs = g.outputs;
  return out;
}

std::unique_ptr<fb::GraphEntryT> graph_entry_ir(const ir::Graph& g) {
  auto e = std::make_unique<fb::GraphEntryT>();
  e->name = g.name;
  for (const auto& s : g.symbols) {
    auto sym = std::make_unique<fb::SymbolT>();
    sym->name = s.name;
    sym->min = s.min;
    sym->max = s.max;
    sym->hot = s.hot;
    sym->divisible_by = s.divisible_by;
    e->symbols.push_back(std::move(sym));
  }
  for (int32_t id : g.inputs) e->inputs.push_back(tensor_spec(g.node(id).name, g.node(id)));
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    e->outputs.push_back(tensor_spec(g.output_names[i], g.node(g.outputs[i])));
  }
  e->ir = ir_to_fb(g);
  return e;
}

ir::Graph ir_from_fb(const fb::GraphEntry& entry) {
  const fb::IrGraph* stored = entry.ir();
  if (stored == nullptr || stored->nodes() == nullptr) {
    throw IrFormatError("the package stores no IR for it (expected an IrGraph, got none)");
  }
  // Every id below is then an index codegen may follow.
  if (std::string error = ir_structure_error(*stored, count(entry.symbols())); !error.empty()) {
    throw IrFormatError(error);
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
    g.nodes.push_back(node_from_fb(g, *stored_node));
    // Codegen indexes by a shape op's axis, permutation, slice bounds and
    // its operands' dims: each must agree with the operands, else a kernel
    // would read out of bounds.
    const auto id = static_cast<int32_t>(g.nodes.size() - 1);
    std::string bad = ir::shape_op_error(g, id);
    // A matmul's kernel (and a gemm's strides) follow its operands' shapes.
    if (bad.empty()) bad = ir::matmul_error(g, id);
    if (!bad.empty()) throw IrFormatError(bad);
  }
  if (stored->inputs() != nullptr)
    g.inputs.assign(stored->inputs()->begin(), stored->inputs()->end());
  if (stored->outputs() != nullptr) {
    g.outputs.assign(stored->outputs()->begin(), stored->outputs()->end());
  }
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    ir::Node& input = g.nodes[static_cast<size_t>(g.inputs[i])];
    if (input.op != ir::Op::input || input.input_index >= 0) {
      throw IrFormatError("input " + std::to_string(i) + " is node " + std::to_string(g.inputs[i]) +
                          " (" + std::string(ir::op_name(input.op)) +
                          "), expected an input node named once");
    }
    input.input_index = static_cast<int32_t>(i);
  }
  // A call binds its tensors by the signature, codegen by the IR.
  if (count(entry.inputs()) != g.inputs.size()) {
    throw IrFormatError("the IR has " + std::to_string(g.inputs.size()) +
                        " inputs, the signature " + std::to_string(count(entry.inputs())));
  }
  if (count(entry.outputs()) != g.outputs.size()) {
    throw IrFormatError("the IR has " + std::to_string(g.outputs.size()) +
                        " outputs, the signature " + std::to_string(count(entry.outputs())));
  }
  for (uint32_t i = 0; i < count(entry.outputs()); ++i) {
    g.output_names.push_back(entry.outputs()->Get(i)->name()->str());
  }
  return g;
}

}  // namespace kiln::compiler
