#include "kiln/compiler/ir.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <stdexcept>

namespace kiln::ir {
namespace {

struct OpInfo {
  Op op;
  std::string_view name;
  int arity;
};

constexpr std::array kOps = {
    OpInfo{Op::input, "input", 0},
    OpInfo{Op::constant, "constant", 0},
    OpInfo{Op::neg, "neg", 1},
    OpInfo{Op::abs, "abs", 1},
    OpInfo{Op::exp, "exp", 1},
    OpInfo{Op::log, "log", 1},
    OpInfo{Op::sin, "sin", 1},
    OpInfo{Op::cos, "cos", 1},
    OpInfo{Op::tanh, "tanh", 1},
    OpInfo{Op::sigmoid, "sigmoid", 1},
    OpInfo{Op::relu, "relu", 1},
    OpInfo{Op::gelu, "gelu", 1},
    OpInfo{Op::sqrt, "sqrt", 1},
    OpInfo{Op::rsqrt, "rsqrt", 1},
    OpInfo{Op::square, "square", 1},
    OpInfo{Op::logical_not, "logical_not", 1},
    OpInfo{Op::cast, "cast", 1},
    OpInfo{Op::add, "add", 2},
    OpInfo{Op::sub, "sub", 2},
    OpInfo{Op::mul, "mul", 2},
    OpInfo{Op::div, "div", 2},
    OpInfo{Op::maximum, "maximum", 2},
    OpInfo{Op::minimum, "minimum", 2},
    OpInfo{Op::pow, "pow", 2},
    OpInfo{Op::eq, "eq", 2},
    OpInfo{Op::ne, "ne", 2},
    OpInfo{Op::lt, "lt", 2},
    OpInfo{Op::le, "le", 2},
    OpInfo{Op::gt, "gt", 2},
    OpInfo{Op::ge, "ge", 2},
    OpInfo{Op::where, "where", 3},
    OpInfo{Op::reduce_sum, "reduce_sum", 1},
    OpInfo{Op::reduce_mean, "reduce_mean", 1},
    OpInfo{Op::reduce_max, "reduce_max", 1},
    OpInfo{Op::reduce_min, "reduce_min", 1},
    OpInfo{Op::reduce_prod, "reduce_prod", 1},
    OpInfo{Op::argmax, "argmax", 1},
    OpInfo{Op::matmul, "matmul", 2},
};

const OpInfo& info(Op op) {
  const auto i = static_cast<size_t>(op);
  if (i >= kOps.size() || kOps[i].op != op) throw std::logic_error("kiln: op table out of order");
  return kOps[i];
}

}  // namespace

std::string_view op_name(Op op) { return info(op).name; }

std::optional<Op> op_from_name(std::string_view name) {
  for (const auto& o : kOps) {
    if (o.name == name) return o.op;
  }
  return std::nullopt;
}

int op_arity(Op op) { return info(op).arity; }

bool is_unary(Op op) { return op >= Op::neg && op <= Op::cast; }
bool is_binary(Op op) { return op >= Op::add && op <= Op::ge; }
bool is_comparison(Op op) { return op >= Op::eq && op <= Op::ge; }
bool is_pointwise(Op op) { return op >= Op::neg && op <= Op::where; }
bool is_reduction(Op op) { return op >= Op::reduce_sum && op <= Op::argmax; }

std::optional<Shape> matmul_shape(const Shape& a, const Shape& b) {
  if (a.size() < 2 || b.size() < 2 || !(a[a.size() - 1] == b[b.size() - 2])) return std::nullopt;
  const size_t batch = std::max(a.size(), b.size()) - 2;
  Shape out(batch, Dim::constant(1));
  for (size_t i = 0; i < batch; ++i) {
    // Right-aligned: batch dim i of the result against each operand's.
    const size_t from_end = batch - i;
    const Dim da = from_end <= a.size() - 2 ? a[a.size() - 2 - from_end] : Dim::constant(1);
    const Dim db = from_end <= b.size() - 2 ? b[b.size() - 2 - from_end] : Dim::constant(1);
    if (da == db || db.is_one()) {
      out[i] = da;
    } else if (da.is_one()) {
      out[i] = db;
    } else {
      return std::nullopt;
    }
  }
  out.push_back(a[a.size() - 2]);
  out.push_back(b[b.size() - 1]);
  return out;
}

std::vector<int32_t> reduced_axes(const Node& n) {
  if (!n.axes.empty()) return n.axes;
  return {n.axis};
}

std::optional<int64_t> static_numel(const Shape& shape) {
  int64_t n = 1;
  for (const auto& d : shape) {
    if (!d.is_constant()) return std::nullopt;
    n *= d.value;
  }
  return n;
}

std::string shape_to_string(const Graph& g, const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    const auto& d = shape[i];
    if (d.is_constant()) {
      s += std::to_string(d.value);
    } else if (static_cast<size_t>(d.sym) < g.symbols.size()) {
      s += g.symbols[static_cast<size_t>(d.sym)].name;
    } else {
      s += "?" + std::to_string(d.sym);
    }
  }
  return s + "]";
}

std::string graph_to_string(const Graph& g) {
  std::string s = "graph " + g.name + "\n";
  for (const auto& sym : g.symbols) {
    s += "  symbol " + sym.name + " in [" + std::to_string(sym.min) + ", " +
         std::to_string(sym.max) + "]";
    if (!sym.hot.empty()) {
      s += " hot {";
      for (size_t i = 0; i < sym.hot.size(); ++i) {
        s += (i ? ", " : "") + std::to_string(sym.hot[i]);
      }
      s += "}";
    }
    if (sym.divisible_by > 1) s += " divisible_by " + std::to_string(sym.divisible_by);
    s += "\n";
  }
  for (size_t id = 0; id < g.nodes.size(); ++id) {
    const Node& n = g.nodes[id];
    s += "  %" + std::to_string(id) + " = " + std::string(op_name(n.op));
    if (n.op == Op::input) {
      s += " " + n.name;
    } else if (n.op == Op::constant) {
      char buf[32];
      std::snprintf(buf, sizeof buf, " %.9g", n.scalar);
      s += buf;
    } else {
      s += "(";
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        s += (i ? ", %" : "%") + std::to_string(n.inputs[i]);
      }
      s += ")";
      if (is_reduction(n.op)) {
        s += " axis=" + std::to_string(n.axis) + (n.keepdim ? " keepdim" : "");
      }
    }
    s += " : " + std::string(dtype_name(n.dtype)) + shape_to_string(g, n.shape) + "\n";
  }
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const std::string name =
        i < g.output_names.size() ? g.output_names[i] : "out" + std::to_string(i);
    s += "  output " + name + " = %" + std::to_string(g.outputs[i]) + "\n";
  }
  return s;
}

int64_t eval_dim(const Dim& d, const SymbolValues& values) {
  if (d.is_constant()) return d.value;
  return values.at(static_cast<size_t>(d.sym));
}

std::vector<int64_t> eval_shape(const Shape& s, const SymbolValues& values) {
  std::vector<int64_t> out;
  out.reserve(s.size());
  for (const auto& d : s) out.push_back(eval_dim(d, values));
  return out;
}

}  // namespace kiln::ir
