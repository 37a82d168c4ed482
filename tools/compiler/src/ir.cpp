#include "kiln/compiler/ir.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
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
    OpInfo{Op::reshape, "reshape", 1},
    OpInfo{Op::expand, "expand", 1},
    OpInfo{Op::permute, "permute", 1},
    OpInfo{Op::slice, "slice", 1},
    OpInfo{Op::concat, "concat", -1},
    OpInfo{Op::gather, "gather", 2},
    OpInfo{Op::iota, "iota", 0},
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
// expand is an identity whose readers broadcast its operand: pointwise.
bool is_pointwise(Op op) { return (op >= Op::neg && op <= Op::where) || op == Op::expand; }
bool is_reduction(Op op) { return op >= Op::reduce_sum && op <= Op::argmax; }
bool is_shape_op(Op op) { return op >= Op::reshape && op <= Op::iota; }

double gather_fill_value(DType dtype) {
  switch (dtype) {
    case DType::i32:
      return static_cast<double>(std::numeric_limits<int32_t>::min());
    case DType::i64:
      return static_cast<double>(std::numeric_limits<int64_t>::min());
    case DType::boolean:
      return 1;
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

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

MatmulBatch matmul_batch(const Shape& operand, const Shape& result) {
  const size_t batch = result.size() - 2;
  const size_t own = operand.size() - 2;
  bool ones = true;
  bool full = true;
  for (size_t i = 0; i < batch; ++i) {
    const Dim d = i + own >= batch ? operand[i + own - batch] : Dim::constant(1);
    ones = ones && d.is_one();
    full = full && d == result[i];
  }
  return ones ? MatmulBatch::none : full ? MatmulBatch::full : MatmulBatch::partial;
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
      s += '?';  // (two appends: GCC 12's -Wrestrict misfires on "?" + std::string&&)
      s += std::to_string(d.sym);
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
      if (n.op == Op::permute) {
        s += " perm=[";
        for (size_t i = 0; i < n.axes.size(); ++i) s += (i ? ", " : "") + std::to_string(n.axes[i]);
        s += "]";
      }
      if (n.op == Op::slice || n.op == Op::concat || n.op == Op::gather) {
        s += " axis=" + std::to_string(n.axis);
      }
      if (n.op == Op::slice && n.params.size() == 3) {
        s += " " + std::to_string(n.params[0]) + ":" + std::to_string(n.params[1]) + ":" +
             std::to_string(n.params[2]);
      }
    }
    if (n.op == Op::iota) s += " axis=" + std::to_string(n.axis);
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

namespace {

// A shape's element count as a constant times a product of symbols, with
// multiplicity (sorted); nullopt when the constant overflows.
struct Numel {
  int64_t constant = 1;
  std::vector<int32_t> symbols;
  friend bool operator==(const Numel&, const Numel&) = default;
};

std::optional<Numel> numel_of(const Shape& s) {
  Numel n;
  for (const Dim& d : s) {
    if (!d.is_constant()) {
      n.symbols.push_back(d.sym);
    } else if (__builtin_mul_overflow(n.constant, d.value, &n.constant)) {
      return std::nullopt;
    }
  }
  std::sort(n.symbols.begin(), n.symbols.end());
  return n;
}

bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const size_t lead = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i) {
    if (!(from[i] == to[lead + i]) && !from[i].is_one()) return false;
  }
  return true;
}

}  // namespace

std::string matmul_error(const Graph& g, int32_t id) {
  const Node& n = g.node(id);
  if (n.op != Op::matmul) return "";
  const std::string what = "node " + std::to_string(id) + " (matmul)";
  const Node& a = g.node(n.inputs.at(0));
  const Node& b = g.node(n.inputs.at(1));
  if (n.dtype != DType::f32 && n.dtype != DType::f16 && n.dtype != DType::bf16) {
    return what + ": expected dtype f32, f16 or bf16, got " + std::string(dtype_name(n.dtype));
  }
  if (a.dtype != n.dtype || b.dtype != n.dtype) {
    return what + ": expected operands of dtype " + std::string(dtype_name(n.dtype)) + ", got " +
           std::string(dtype_name(a.dtype)) + " and " + std::string(dtype_name(b.dtype));
  }
  const std::optional<Shape> want = matmul_shape(a.shape, b.shape);
  if (!want || *want != n.shape) {
    return what + ": expected " +
           (want ? "shape " + shape_to_string(g, *want) : "operands that multiply") +
           " from operands " + shape_to_string(g, a.shape) + " and " + shape_to_string(g, b.shape) +
           ", got " + shape_to_string(g, n.shape);
  }
  for (const Node* op : {&a, &b}) {
    if (matmul_batch(op->shape, *want) == MatmulBatch::partial) {
      return what + ": expected each operand's batch dims to be all of " +
             shape_to_string(g, Shape(want->begin(), want->end() - 2)) + " or none, got " +
             shape_to_string(g, op->shape);
    }
  }
  return "";
}

std::string shape_op_error(const Graph& g, int32_t id) {
  const Node& n = g.node(id);
  if (!is_shape_op(n.op)) return "";
  const std::string what = "node " + std::to_string(id) + " (" + std::string(op_name(n.op)) + ")";
  auto shape = [&](const Shape& s) { return shape_to_string(g, s); };
  for (const Dim& d : n.shape) {
    if (d.is_constant() && d.value < 1) {
      return what + ": expected dims >= 1, got shape " + shape(n.shape);
    }
  }
  const auto rank = static_cast<int64_t>(n.shape.size());
  auto operand = [&](size_t k) -> const Node& { return g.node(n.inputs.at(k)); };
  if (n.op != Op::iota && n.op != Op::gather) {
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      if (operand(k).dtype != n.dtype) {
        return what + ": expected dtype " + std::string(dtype_name(n.dtype)) + " for operand " +
               std::to_string(k) + ", got " + std::string(dtype_name(operand(k).dtype));
      }
    }
  }
  auto axis_error = [&](int64_t axis, int64_t of_rank) -> std::string {
    if (axis >= 0 && axis < of_rank) return "";
    return what + ": expected an axis in [0, " + std::to_string(of_rank) + "), got " +
           std::to_string(axis);
  };
  auto expect_shape = [&](const Shape& want) -> std::string {
    if (want == n.shape) return "";
    return what + ": expected shape " + shape(want) + ", got " + shape(n.shape);
  };
  switch (n.op) {
    case Op::reshape: {
      if (operand(0).op == Op::constant) {
        return what +
               ": expected an operand with a buffer to alias, got a constant (a scalar is "
               "expanded instead)";
      }
      const auto a = numel_of(operand(0).shape);
      const auto b = numel_of(n.shape);
      if (!a || !b || !(*a == *b)) {
        return what + ": expected as many elements as " + shape(operand(0).shape) + ", got " +
               shape(n.shape);
      }
      return "";
    }
    case Op::expand:
      if (!broadcasts_to(operand(0).shape, n.shape)) {
        return what + ": expected a shape " + shape(operand(0).shape) + " broadcasts to, got " +
               shape(n.shape);
      }
      return "";
    case Op::permute: {
      const Shape& in = operand(0).shape;
      std::vector<int32_t> sorted = n.axes;
      std::sort(sorted.begin(), sorted.end());
      bool ok = sorted.size() == in.size();
      for (size_t i = 0; ok && i < sorted.size(); ++i) ok = sorted[i] == static_cast<int32_t>(i);
      if (!ok) {
        std::string perm;
        for (size_t i = 0; i < n.axes.size(); ++i)
          perm += (i ? ", " : "") + std::to_string(n.axes[i]);
        return what + ": expected a permutation of the " + std::to_string(in.size()) +
               " axes, got [" + perm + "]";
      }
      Shape want;
      for (int32_t a : n.axes) want.push_back(in[static_cast<size_t>(a)]);
      return expect_shape(want);
    }
    case Op::slice: {
      const Shape& in = operand(0).shape;
      if (auto e = axis_error(n.axis, static_cast<int64_t>(in.size())); !e.empty()) return e;
      const Dim& d = in[static_cast<size_t>(n.axis)];
      if (!d.is_constant()) return what + ": expected a constant dim to slice, got " + shape({d});
      if (n.params.size() != 3) {
        return what + ": expected 3 params (start, stop, step), got " +
               std::to_string(n.params.size());
      }
      const int64_t start = n.params[0];
      const int64_t stop = n.params[1];
      const int64_t step = n.params[2];
      if (!(start >= 0 && start < stop && stop <= d.value && step >= 1)) {
        return what + ": expected 0 <= start < stop <= " + std::to_string(d.value) +
               " and step >= 1, got " + std::to_string(start) + ":" + std::to_string(stop) + ":" +
               std::to_string(step);
      }
      Shape want = in;
      want[static_cast<size_t>(n.axis)] = Dim::constant((stop - start + step - 1) / step);
      return expect_shape(want);
    }
    case Op::concat: {
      if (n.inputs.empty()) return what + ": expected one or more inputs, got none";
      const Shape& first = operand(0).shape;
      if (auto e = axis_error(n.axis, static_cast<int64_t>(first.size())); !e.empty()) return e;
      const auto a = static_cast<size_t>(n.axis);
      Shape want = first;
      int64_t total = 0;
      for (size_t k = 0; k < n.inputs.size(); ++k) {
        const Shape& s = operand(k).shape;
        Shape other = s;
        if (s.size() == first.size()) {
          other[a] = first[a];
        }
        if (!(other == first)) {
          return what + ": expected operand " + std::to_string(k) + " to match " + shape(first) +
                 " but along axis " + std::to_string(a) + ", got " + shape(s);
        }
        if (!s[a].is_constant()) {
          return what + ": expected a constant dim along the axis, got " + shape(s);
        }
        if (__builtin_add_overflow(total, s[a].value, &total)) {
          return what + ": expected a size along the axis that fits int64";
        }
      }
      want[a] = Dim::constant(total);
      return expect_shape(want);
    }
    case Op::gather: {
      const Shape& table = operand(0).shape;
      const Node& idx = operand(1);
      if (auto e = axis_error(n.axis, static_cast<int64_t>(table.size())); !e.empty()) return e;
      if (idx.dtype != DType::i32 && idx.dtype != DType::i64) {
        return what + ": expected i32 or i64 indices, got " + std::string(dtype_name(idx.dtype));
      }
      if (operand(0).dtype != n.dtype) {
        return what + ": expected dtype " + std::string(dtype_name(n.dtype)) +
               " for the table, got " + std::string(dtype_name(operand(0).dtype));
      }
      const auto a = static_cast<std::ptrdiff_t>(n.axis);
      Shape want(table.begin(), table.begin() + a);
      want.insert(want.end(), idx.shape.begin(), idx.shape.end());
      want.insert(want.end(), table.begin() + a + 1, table.end());
      return expect_shape(want);
    }
    case Op::iota:
      if (auto e = axis_error(n.axis, rank); !e.empty()) return e;
      if (n.dtype == DType::boolean) return what + ": expected a numeric dtype, got bool";
      return "";
    default:
      return "";
  }
}

}  // namespace kiln::ir
