#include "kiln/manifest_text.h"

#include "guard_program.h"
#include "kiln/support/hex.h"
#include "size_expr.h"

namespace kiln {
namespace {

std::vector<std::string> symbol_names(const fb::GraphEntry& graph) {
  std::vector<std::string> names;
  if (graph.symbols()) {
    for (const fb::Symbol* s : *graph.symbols()) names.push_back(s->name()->str());
  }
  return names;
}

detail::GraphNames graph_names(const fb::GraphEntry& graph) {
  detail::GraphNames names;
  if (graph.inputs()) {
    for (const fb::TensorSpec* t : *graph.inputs()) names.tensors.push_back(t->name()->str());
  }
  if (graph.outputs()) {
    for (const fb::TensorSpec* t : *graph.outputs()) names.tensors.push_back(t->name()->str());
  }
  names.symbols = symbol_names(graph);
  return names;
}

}  // namespace

std::string describe_guard(const fb::GraphEntry& graph, const fb::Guard& guard) {
  return detail::GuardProgram::describe(guard, graph_names(graph));
}

std::string describe_size_expr(const fb::GraphEntry& graph, const fb::SizeExpr* expr) {
  return detail::size_expr_text(expr, symbol_names(graph));
}

std::string describe_dims(const fb::GraphEntry& graph, const fb::TensorSpec& tensor) {
  const std::vector<std::string> symbols = symbol_names(graph);
  std::string text = "[";
  if (tensor.dims()) {
    for (uint32_t d = 0; d < tensor.dims()->size(); ++d) {
      if (d > 0) text += ", ";
      const fb::Dim* dim = tensor.dims()->Get(d);
      if (dim->symbol() >= 0 && static_cast<size_t>(dim->symbol()) < symbols.size()) {
        text += symbols[dim->symbol()];
      } else {
        text += std::to_string(dim->value());
      }
    }
  }
  return text + "]";
}

std::string hash_text(const fb::Hash128* hash) {
  if (hash == nullptr) return "-";
  std::string text;
  support::append_hex16(text, hash->hi());
  support::append_hex16(text, hash->lo());
  return text;
}

}  // namespace kiln
