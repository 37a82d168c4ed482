// Tracing: each op checks its operands, appends one node to the graph being
// traced, and returns it. Errors name the graph and the op.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string_view>

#include "kiln/compiler/generator.h"
#include "kiln/graph.h"
#include "kiln/support/identifier.h"

namespace kiln {
namespace {

struct Tracer {
  ir::Graph graph;
  bool targets_declared = false;  // graph_targets() was called
};

thread_local Tracer* g_tracer = nullptr;

Tracer& tracer(std::string_view what) {
  if (g_tracer == nullptr) {
    throw TraceError("kiln: " + std::string(what) +
                     " called outside a KILN_GRAPH body (graphs are traced by kiln::trace)");
  }
  return *g_tracer;
}

[[noreturn]] void fail(std::string_view op, const std::string& message) {
  const std::string graph = g_tracer != nullptr ? g_tracer->graph.name : "?";
  throw TraceError("kiln: graph '" + graph + "': op '" + std::string(op) + "': " + message);
}

const ir::Node& node_of(Tensor t) {
  auto& g = tracer("Tensor").graph;
  if (t.id() < 0 || static_cast<size_t>(t.id()) >= g.nodes.size()) {
    fail("?", "tensor does not belong to the graph being traced");
  }
  return g.nodes[static_cast<size_t>(t.id())];
}

std::string shape_str(const ir::Shape& s) { return ir::shape_to_string(g_tracer->graph, s); }
std::string dim_str(const ir::Dim& d) {
  const std::string s = shape_str({d});
  return s.substr(1, s.size() - 2);
}

Tensor append(ir::Node n) {
  auto& g = tracer(ir::op_name(n.op)).graph;
  for (int32_t in : n.inputs) {
    if (in < 0 || static_cast<size_t>(in) >= g.nodes.size()) {
      fail(ir::op_name(n.op), "operand does not belong to the graph being traced");
    }
  }
  g.nodes.push_back(std::move(n));
  return Tensor::from_node(static_cast<int32_t>(g.nodes.size() - 1));
}

ir::Shape broadcast_shapes(std::string_view op, const ir::Shape& a, const ir::Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  ir::Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const ir::Dim* da = i < rank - a.size() ? nullptr : &a[i - (rank - a.size())];
    const ir::Dim* db = i < rank - b.size() ? nullptr : &b[i - (rank - b.size())];
    if (da != nullptr && (db == nullptr || *da == *db || db->is_one())) {
      out[i] = *da;
    } else if (da == nullptr || da->is_one()) {
      out[i] = *db;
    } else {
      fail(op, "cannot broadcast " + shape_str(a) + " with " + shape_str(b));
    }
  }
  return out;
}

void require_float(std::string_view op, const ir::Node& n) {
  if (!dtype_is_float(n.dtype)) {
    fail(op, "expects a floating-point operand, got " + std::string(dtype_name(n.dtype)));
  }
}

void require_numeric(std::string_view op, const ir::Node& n) {
  if (n.dtype == DType::boolean) fail(op, "expects a numeric operand, got bool");
}

Tensor unary(ir::Op op, Tensor x) {
  const auto& n = node_of(x);
  const std::string_view name = ir::op_name(op);
  switch (op) {
    case ir::Op::neg:
    case ir::Op::abs:
    case ir::Op::relu:
    case ir::Op::square:
      require_numeric(name, n);
      break;
    case ir::Op::logical_not:
      if (n.dtype != DType::boolean) {
        fail(name, "expects a bool operand, got " + std::string(dtype_name(n.dtype)));
      }
      break;
    default:
      require_float(name, n);
  }
  ir::Node out;
  out.op = op;
  out.dtype = n.dtype;
  out.shape = n.shape;
  out.inputs = {x.id()};
  return append(std::move(out));
}

// The number of `x op 2.0` as a constant of x's dtype. On an i32 or i64
// tensor it must be an integer the dtype holds: truncating would change what
// the author wrote (`i < 2.5` is not `i < 2`, `i * 0.5` is not `i * 0`).
Tensor scalar_like(std::string_view op, double value, Tensor like) {
  const DType dtype = node_of(like).dtype;
  if (dtype == DType::i32 || dtype == DType::i64) {
    // Bounds exactly representable as doubles: [-2^31, 2^31) and [-2^63, 2^63).
    const double limit = dtype == DType::i32 ? 2147483648.0 : 9223372036854775808.0;
    if (!(std::trunc(value) == value && value >= -limit && value < limit)) {
      char got[32];
      std::snprintf(got, sizeof got, "%.17g", value);
      fail(op, "a scalar on an " + std::string(dtype_name(dtype)) +
                   " tensor takes its dtype: expected an integer in [" +
                   (dtype == DType::i32 ? "-2147483648, 2147483647"
                                        : "-9223372036854775808, 9223372036854775807") +
                   "], got " + got + " (kiln::cast the tensor to a float dtype for a fraction)");
    }
  }
  return constant(value, dtype);
}

Tensor binary(ir::Op op, Tensor a, Tensor b) {
  const auto& na = node_of(a);
  const auto& nb = node_of(b);
  const std::string_view name = ir::op_name(op);
  if (na.dtype != nb.dtype) {
    fail(name, "dtype mismatch: " + std::string(dtype_name(na.dtype)) + " and " +
                   std::string(dtype_name(nb.dtype)) + " (insert kiln::cast)");
  }
  if (op == ir::Op::div || op == ir::Op::pow) {
    require_float(name, na);
  } else if (!ir::is_comparison(op) || (op != ir::Op::eq && op != ir::Op::ne)) {
    require_numeric(name, na);
  }
  ir::Node out;
  out.op = op;
  out.dtype = ir::is_comparison(op) ? DType::boolean : na.dtype;
  out.shape = broadcast_shapes(name, na.shape, nb.shape);
  out.inputs = {a.id(), b.id()};
  return append(std::move(out));
}

Tensor reduction(ir::Op op, Tensor x, const std::vector<int>& axes, bool keepdim) {
  const auto& n = node_of(x);
  const std::string_view name = ir::op_name(op);
  const auto rank = static_cast<int>(n.shape.size());
  if (rank == 0) fail(name, "cannot reduce a rank-0 tensor");
  if (axes.empty()) fail(name, "no axis to reduce (kiln::all_axes(x) names every axis)");
  std::vector<int32_t> norm;
  for (int axis : axes) {
    const int a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) {
      fail(name,
           "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
    }
    if (std::find(norm.begin(), norm.end(), a) != norm.end()) {
      fail(name, "axis " + std::to_string(axis) + " is named twice (as axis " + std::to_string(a) +
                     " of rank " + std::to_string(rank) + ")");
    }
    norm.push_back(a);
  }
  std::sort(norm.begin(), norm.end());
  if (op == ir::Op::argmax && norm.size() != 1) fail(name, "reduces exactly one axis");
  if (op == ir::Op::reduce_mean) {
    require_float(name, n);
  } else {
    require_numeric(name, n);
  }
  ir::Node out;
  out.op = op;
  out.dtype = op == ir::Op::argmax ? DType::i64 : n.dtype;
  for (int a = 0; a < rank; ++a) {
    const bool reduced = std::binary_search(norm.begin(), norm.end(), a);
    if (!reduced) {
      out.shape.push_back(n.shape[static_cast<size_t>(a)]);
    } else if (keepdim) {
      out.shape.push_back(ir::Dim::constant(1));
    }
  }
  out.inputs = {x.id()};
  out.axis = norm.front();
  if (norm.size() > 1) out.axes = norm;
  out.keepdim = keepdim;
  return append(std::move(out));
}

// Graph, input and output names become C++ names in the generated header
// (functions and parameters), so they must be usable there.
bool is_usable_cpp_name(std::string_view s) {
  static constexpr std::string_view kReserved[] = {
      "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break",
      "case", "catch", "char", "char8_t", "char16_t", "char32_t", "class", "co_await", "co_return",
      "co_yield", "compl", "concept", "const", "consteval", "constexpr", "constinit", "const_cast",
      "continue", "decltype", "default", "delete", "do", "double", "dynamic_cast", "else", "enum",
      "explicit", "export", "extern", "false", "float", "for", "friend", "goto", "if", "inline",
      "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq", "nullptr",
      "operator", "or", "or_eq", "private", "protected", "public", "register", "reinterpret_cast",
      "requires", "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast",
      "struct", "switch", "template", "this", "thread_local", "throw", "true", "try", "typedef",
      "typeid", "typename", "union", "unsigned", "using", "virtual", "void", "volatile", "wchar_t",
      "while", "xor", "xor_eq",
      // the generated functions' own names
      "stream", "kiln"};
  if (!support::is_c_identifier(s)) return false;
  // Names with a double underscore, or an underscore and a capital, are the
  // implementation's.
  if (s.find("__") != std::string_view::npos) return false;
  if (s.size() > 1 && s[0] == '_' && std::isupper(static_cast<unsigned char>(s[1]))) return false;
  return std::find(std::begin(kReserved), std::end(kReserved), s) == std::end(kReserved);
}

struct Registry {
  std::mutex mutex;
  std::map<std::string, RegisteredGraph> graphs;
  std::vector<std::string> duplicates;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

DType Tensor::dtype() const { return node_of(*this).dtype; }
const ir::Shape& Tensor::shape() const { return node_of(*this).shape; }

SymDim sym(std::string name, SymOptions options) {
  auto& g = tracer("kiln::sym").graph;
  const std::string op = "sym '" + name + "'";
  if (!support::is_c_identifier(name)) fail(op, "symbol names must be C identifiers");
  for (const auto& s : g.symbols) {
    if (s.name == name) fail(op, "symbol declared twice");
  }
  if (options.min < 1) fail(op, "min must be >= 1, got " + std::to_string(options.min));
  if (options.max < options.min) {
    fail(op, "max " + std::to_string(options.max) + " is below min " + std::to_string(options.min));
  }
  if (options.divisible_by < 1) fail(op, "divisible_by must be >= 1");
  for (int64_t h : options.hot) {
    if (h < options.min || h > options.max) {
      fail(op, "hot value " + std::to_string(h) + " is outside [" + std::to_string(options.min) +
                   ", " + std::to_string(options.max) + "]");
    }
    if (h % options.divisible_by != 0) {
      fail(op, "hot value " + std::to_string(h) + " is not divisible by " +
                   std::to_string(options.divisible_by));
    }
  }
  std::sort(options.hot.begin(), options.hot.end());
  options.hot.erase(std::unique(options.hot.begin(), options.hot.end()), options.hot.end());
  g.symbols.push_back(ir::SymbolDecl{std::move(name), options.min, options.max,
                                     std::move(options.hot), options.divisible_by});
  return SymDim(static_cast<int32_t>(g.symbols.size() - 1));
}

Tensor input(std::string name, DType dtype, std::initializer_list<DimArg> shape) {
  return input(std::move(name), dtype, std::vector<DimArg>(shape));
}

Tensor input(std::string name, DType dtype, const std::vector<DimArg>& shape) {
  auto& g = tracer("kiln::input").graph;
  const std::string op = "input '" + name + "'";
  if (!is_usable_cpp_name(name)) {
    fail(op, "input names must be C++ identifiers that are not keywords or reserved names");
  }
  for (int32_t id : g.inputs) {
    if (g.node(id).name == name) fail(op, "input declared twice");
  }
  if (shape.size() > 8) fail(op, "rank " + std::to_string(shape.size()) + " exceeds 8");
  ir::Node n;
  n.op = ir::Op::input;
  n.dtype = dtype;
  for (const auto& d : shape) {
    if (d.dim().is_constant() && d.dim().value < 1) {
      fail(op, "dimension " + std::to_string(d.dim().value) + " must be >= 1");
    }
    if (!d.dim().is_constant() && static_cast<size_t>(d.dim().sym) >= g.symbols.size()) {
      fail(op, "symbol does not belong to this graph");
    }
    n.shape.push_back(d.dim());
  }
  n.name = std::move(name);
  n.input_index = static_cast<int32_t>(g.inputs.size());
  Tensor t = append(std::move(n));
  g.inputs.push_back(t.id());
  return t;
}

Tensor constant(double value, DType dtype) {
  ir::Node n;
  n.op = ir::Op::constant;
  n.dtype = dtype;
  if (dtype == DType::boolean) value = value != 0 ? 1 : 0;
  if (!dtype_is_float(dtype)) value = static_cast<double>(static_cast<int64_t>(value));
  n.scalar = value;
  return append(std::move(n));
}

Tensor neg(Tensor x) { return unary(ir::Op::neg, x); }
Tensor abs(Tensor x) { return unary(ir::Op::abs, x); }
Tensor exp(Tensor x) { return unary(ir::Op::exp, x); }
Tensor log(Tensor x) { return unary(ir::Op::log, x); }
Tensor sin(Tensor x) { return unary(ir::Op::sin, x); }
Tensor cos(Tensor x) { return unary(ir::Op::cos, x); }
Tensor tanh(Tensor x) { return unary(ir::Op::tanh, x); }
Tensor sigmoid(Tensor x) { return unary(ir::Op::sigmoid, x); }
Tensor relu(Tensor x) { return unary(ir::Op::relu, x); }
Tensor gelu(Tensor x) { return unary(ir::Op::gelu, x); }
Tensor sqrt(Tensor x) { return unary(ir::Op::sqrt, x); }
Tensor rsqrt(Tensor x) { return unary(ir::Op::rsqrt, x); }
Tensor square(Tensor x) { return unary(ir::Op::square, x); }
Tensor logical_not(Tensor x) { return unary(ir::Op::logical_not, x); }

Tensor cast(Tensor x, DType to) {
  const auto& n = node_of(x);
  if (n.dtype == to) return x;
  ir::Node out;
  out.op = ir::Op::cast;
  out.dtype = to;
  out.shape = n.shape;
  out.inputs = {x.id()};
  return append(std::move(out));
}

Tensor add(Tensor a, Tensor b) { return binary(ir::Op::add, a, b); }
Tensor sub(Tensor a, Tensor b) { return binary(ir::Op::sub, a, b); }
Tensor mul(Tensor a, Tensor b) { return binary(ir::Op::mul, a, b); }
Tensor div(Tensor a, Tensor b) { return binary(ir::Op::div, a, b); }
Tensor maximum(Tensor a, Tensor b) { return binary(ir::Op::maximum, a, b); }
Tensor minimum(Tensor a, Tensor b) { return binary(ir::Op::minimum, a, b); }
Tensor max(Tensor a, Tensor b) { return maximum(a, b); }
Tensor min(Tensor a, Tensor b) { return minimum(a, b); }
Tensor pow(Tensor a, Tensor b) { return binary(ir::Op::pow, a, b); }
Tensor pow(Tensor a, double b) { return pow(a, scalar_like("pow", b, a)); }
Tensor maximum(Tensor a, double b) { return maximum(a, scalar_like("maximum", b, a)); }
Tensor minimum(Tensor a, double b) { return minimum(a, scalar_like("minimum", b, a)); }
Tensor eq(Tensor a, Tensor b) { return binary(ir::Op::eq, a, b); }
Tensor ne(Tensor a, Tensor b) { return binary(ir::Op::ne, a, b); }
Tensor lt(Tensor a, Tensor b) { return binary(ir::Op::lt, a, b); }
Tensor le(Tensor a, Tensor b) { return binary(ir::Op::le, a, b); }
Tensor gt(Tensor a, Tensor b) { return binary(ir::Op::gt, a, b); }
Tensor ge(Tensor a, Tensor b) { return binary(ir::Op::ge, a, b); }

Tensor where(Tensor cond, Tensor a, Tensor b) {
  const auto& nc = node_of(cond);
  const auto& na = node_of(a);
  const auto& nb = node_of(b);
  if (nc.dtype != DType::boolean) {
    fail("where", "condition must be bool, got " + std::string(dtype_name(nc.dtype)));
  }
  if (na.dtype != nb.dtype) {
    fail("where", "dtype mismatch: " + std::string(dtype_name(na.dtype)) + " and " +
                      std::string(dtype_name(nb.dtype)) + " (insert kiln::cast)");
  }
  ir::Node out;
  out.op = ir::Op::where;
  out.dtype = na.dtype;
  out.shape = broadcast_shapes("where", broadcast_shapes("where", nc.shape, na.shape), nb.shape);
  out.inputs = {cond.id(), a.id(), b.id()};
  return append(std::move(out));
}

Tensor operator+(Tensor a, Tensor b) { return add(a, b); }
Tensor operator-(Tensor a, Tensor b) { return sub(a, b); }
Tensor operator*(Tensor a, Tensor b) { return mul(a, b); }
Tensor operator/(Tensor a, Tensor b) { return div(a, b); }
Tensor operator+(Tensor a, double b) { return add(a, scalar_like("add", b, a)); }
Tensor operator-(Tensor a, double b) { return sub(a, scalar_like("sub", b, a)); }
Tensor operator*(Tensor a, double b) { return mul(a, scalar_like("mul", b, a)); }
Tensor operator/(Tensor a, double b) { return div(a, scalar_like("div", b, a)); }
Tensor operator+(double a, Tensor b) { return add(scalar_like("add", a, b), b); }
Tensor operator-(double a, Tensor b) { return sub(scalar_like("sub", a, b), b); }
Tensor operator*(double a, Tensor b) { return mul(scalar_like("mul", a, b), b); }
Tensor operator/(double a, Tensor b) { return div(scalar_like("div", a, b), b); }
Tensor operator-(Tensor x) { return neg(x); }
Tensor operator<(Tensor a, Tensor b) { return lt(a, b); }
Tensor operator<=(Tensor a, Tensor b) { return le(a, b); }
Tensor operator>(Tensor a, Tensor b) { return gt(a, b); }
Tensor operator>=(Tensor a, Tensor b) { return ge(a, b); }
Tensor operator<(Tensor a, double b) { return lt(a, scalar_like("lt", b, a)); }
Tensor operator>(Tensor a, double b) { return gt(a, scalar_like("gt", b, a)); }

std::vector<int> all_axes(Tensor x) {
  std::vector<int> axes(static_cast<size_t>(x.rank()));
  for (size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<int>(i);
  return axes;
}

Tensor sum(Tensor x, int axis, bool keepdim) {
  return reduction(ir::Op::reduce_sum, x, {axis}, keepdim);
}
Tensor mean(Tensor x, int axis, bool keepdim) {
  return reduction(ir::Op::reduce_mean, x, {axis}, keepdim);
}
Tensor max(Tensor x, int axis, bool keepdim) {
  return reduction(ir::Op::reduce_max, x, {axis}, keepdim);
}
Tensor min(Tensor x, int axis, bool keepdim) {
  return reduction(ir::Op::reduce_min, x, {axis}, keepdim);
}
Tensor prod(Tensor x, int axis, bool keepdim) {
  return reduction(ir::Op::reduce_prod, x, {axis}, keepdim);
}
Tensor sum(Tensor x, const std::vector<int>& axes, bool keepdim) {
  return reduction(ir::Op::reduce_sum, x, axes, keepdim);
}
Tensor mean(Tensor x, const std::vector<int>& axes, bool keepdim) {
  return reduction(ir::Op::reduce_mean, x, axes, keepdim);
}
Tensor max(Tensor x, const std::vector<int>& axes, bool keepdim) {
  return reduction(ir::Op::reduce_max, x, axes, keepdim);
}
Tensor min(Tensor x, const std::vector<int>& axes, bool keepdim) {
  return reduction(ir::Op::reduce_min, x, axes, keepdim);
}
Tensor prod(Tensor x, const std::vector<int>& axes, bool keepdim) {
  return reduction(ir::Op::reduce_prod, x, axes, keepdim);
}
Tensor argmax(Tensor x, int axis, bool keepdim) {
  return reduction(ir::Op::argmax, x, {axis}, keepdim);
}

namespace {

int normalize_axis(std::string_view op, int axis, int64_t rank) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    fail(op, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return static_cast<int>(a);
}

ir::Dim checked_dim(std::string_view op, const DimArg& d) {
  const auto& g = tracer(op).graph;
  if (d.dim().is_constant() && d.dim().value < 1) {
    fail(op, "dimension " + std::to_string(d.dim().value) + " must be >= 1");
  }
  if (!d.dim().is_constant() && static_cast<size_t>(d.dim().sym) >= g.symbols.size()) {
    fail(op, "symbol does not belong to this graph");
  }
  return d.dim();
}

void check_rank(std::string_view op, size_t rank) {
  if (rank > 8) fail(op, "the result's rank " + std::to_string(rank) + " exceeds 8");
}

// "4*n*m": a shape's element count as a product.
std::string numel_str(const ir::Shape& s) {
  int64_t c = 1;
  std::string syms;
  bool overflow = false;
  for (const auto& d : s) {
    if (d.is_constant()) {
      overflow |= __builtin_mul_overflow(c, d.value, &c);
    } else {
      syms += "*" + g_tracer->graph.symbols[static_cast<size_t>(d.sym)].name;
    }
  }
  if (overflow) return "more than 2^63";
  if (syms.empty()) return std::to_string(c);
  return c == 1 ? syms.substr(1) : std::to_string(c) + syms;
}

// A constant times a multiset of symbols.
struct Count {
  int64_t constant = 1;
  std::multiset<int32_t> symbols;
};

Count count_of(std::string_view op, const ir::Shape& s) {
  Count c;
  for (const auto& d : s) {
    if (!d.is_constant()) {
      c.symbols.insert(d.sym);
    } else if (__builtin_mul_overflow(c.constant, d.value, &c.constant)) {
      fail(op, "the element count of " + shape_str(s) + " overflows int64");
    }
  }
  return c;
}

const ir::Node* node_ptr(Tensor t) { return &node_of(t); }

Tensor shape_node(ir::Op op, DType dtype, ir::Shape shape, std::vector<int32_t> inputs) {
  ir::Node out;
  out.op = op;
  out.dtype = dtype;
  out.shape = std::move(shape);
  out.inputs = std::move(inputs);
  return append(std::move(out));
}

Tensor reshape_to(std::string_view op, Tensor x, const std::vector<DimArg>& shape) {
  const ir::Node* n = node_ptr(x);
  check_rank(op, shape.size());
  ir::Shape target;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i].dim().is_constant() && shape[i].dim().value == -1) {
      if (infer >= 0) fail(op, "more than one dim is -1 (at most one is inferred)");
      infer = static_cast<int>(i);
      target.push_back(ir::Dim::constant(1));
      continue;
    }
    target.push_back(checked_dim(op, shape[i]));
  }
  const Count have = count_of(op, n->shape);
  Count want = count_of(op, target);
  if (infer >= 0) {
    // The inferred dim is what the operand's count has that the others lack:
    // a constant, or one symbol.
    std::multiset<int32_t> rest = have.symbols;
    bool ok = have.constant % want.constant == 0;
    for (int32_t s : want.symbols) {
      auto it = rest.find(s);
      if (it == rest.end()) {
        ok = false;
        break;
      }
      rest.erase(it);
    }
    const int64_t c = ok ? have.constant / want.constant : 0;
    if (ok && rest.empty()) {
      target[static_cast<size_t>(infer)] = ir::Dim::constant(c);
    } else if (ok && rest.size() == 1 && c == 1) {
      target[static_cast<size_t>(infer)] = ir::Dim::symbol(*rest.begin());
    } else {
      std::string dims = "[";
      for (size_t i = 0; i < target.size(); ++i) {
        dims += (i ? ", " : "") +
                (static_cast<int>(i) == infer ? std::string("-1") : dim_str(target[i]));
      }
      fail(op, "cannot infer the -1 of " + dims + "] from " + shape_str(n->shape) + " (" +
                   numel_str(n->shape) +
                   " elements): expected what is left to be a constant or one symbol");
    }
    want = count_of(op, target);
  }
  if (have.constant != want.constant || have.symbols != want.symbols) {
    fail(op, "expected a shape of " + numel_str(n->shape) + " elements (as " + shape_str(n->shape) +
                 ": the same symbols and constant product), got " + shape_str(target) + " (" +
                 numel_str(target) + ")");
  }
  // A reshape of a reshape reads the first one's operand, and so does a
  // reshape of a broadcast that only added leading dims of 1.
  for (;;) {
    const ir::Node* in = n->inputs.empty() ? nullptr : node_ptr(Tensor::from_node(n->inputs[0]));
    const bool leading_ones =
        n->op == ir::Op::expand && n->shape.size() >= in->shape.size() &&
        std::equal(in->shape.begin(), in->shape.end(),
                   n->shape.end() - static_cast<std::ptrdiff_t>(in->shape.size())) &&
        std::all_of(n->shape.begin(),
                    n->shape.end() - static_cast<std::ptrdiff_t>(in->shape.size()),
                    [](const ir::Dim& d) { return d.is_one(); });
    if (n->op != ir::Op::reshape && !leading_ones) break;
    x = Tensor::from_node(n->inputs[0]);
    n = in;
  }
  if (target == n->shape) return x;
  // Leading dims of 1 added only: a broadcast, which fuses where a reshape
  // (an alias of its operand's buffer) does not. It also covers a scalar
  // constant, which has no buffer to alias.
  const size_t lead = target.size() >= n->shape.size() ? target.size() - n->shape.size() : 0;
  if (target.size() >= n->shape.size() &&
      std::equal(n->shape.begin(), n->shape.end(),
                 target.begin() + static_cast<std::ptrdiff_t>(lead)) &&
      std::all_of(target.begin(), target.begin() + static_cast<std::ptrdiff_t>(lead),
                  [](const ir::Dim& d) { return d.is_one(); })) {
    return shape_node(ir::Op::expand, n->dtype, std::move(target), {x.id()});
  }
  return shape_node(ir::Op::reshape, n->dtype, std::move(target), {x.id()});
}

Tensor expand_to(std::string_view op, Tensor x, const std::vector<DimArg>& shape) {
  const ir::Node& n = node_of(x);
  check_rank(op, shape.size());
  if (shape.size() < n.shape.size()) {
    fail(op, "expected a shape of rank >= " + std::to_string(n.shape.size()) + " (the rank of " +
                 shape_str(n.shape) + "), got rank " + std::to_string(shape.size()));
  }
  const size_t lead = shape.size() - n.shape.size();
  ir::Shape target;
  for (size_t i = 0; i < shape.size(); ++i) {
    const bool keep = shape[i].dim().is_constant() && shape[i].dim().value == -1;
    if (keep && i < lead) {
      fail(op, "-1 (keep the dim) at new dim " + std::to_string(i) + ", which " +
                   shape_str(n.shape) + " does not have");
    }
    target.push_back(keep ? n.shape[i - lead] : checked_dim(op, shape[i]));
  }
  for (size_t i = 0; i < n.shape.size(); ++i) {
    const ir::Dim& from = n.shape[i];
    const ir::Dim& to = target[lead + i];
    if (!(from == to) && !from.is_one()) {
      fail(op, "cannot broadcast " + shape_str(n.shape) + " to " + shape_str(target) +
                   ": expected dim " + std::to_string(lead + i) + " to be " + dim_str(from) +
                   " (or the operand's dim to be 1), got " + dim_str(to));
    }
  }
  if (target == n.shape) return x;
  // Broadcasting is transitive: a broadcast of a broadcast broadcasts the
  // first one's operand.
  const int32_t from = n.op == ir::Op::expand ? n.inputs[0] : x.id();
  return shape_node(ir::Op::expand, n.dtype, std::move(target), {from});
}

Tensor gather_along(std::string_view op, Tensor table, Tensor indices, int axis) {
  const ir::Node& t = node_of(table);
  const ir::Node& i = node_of(indices);
  if (t.shape.empty()) fail(op, "expects a table of rank >= 1, got a rank-0 tensor");
  if (i.dtype != DType::i32 && i.dtype != DType::i64) {
    fail(op, "expects i32 or i64 indices, got " + std::string(dtype_name(i.dtype)));
  }
  const int a = normalize_axis(op, axis, static_cast<int64_t>(t.shape.size()));
  ir::Shape shape(t.shape.begin(), t.shape.begin() + a);
  shape.insert(shape.end(), i.shape.begin(), i.shape.end());
  shape.insert(shape.end(), t.shape.begin() + a + 1, t.shape.end());
  check_rank(op, shape.size());
  ir::Node out;
  out.op = ir::Op::gather;
  out.dtype = t.dtype;
  out.shape = std::move(shape);
  out.inputs = {table.id(), indices.id()};
  out.axis = a;
  return append(std::move(out));
}

}  // namespace

Tensor reshape(Tensor x, std::initializer_list<DimArg> shape) {
  return reshape(x, std::vector<DimArg>(shape));
}
Tensor reshape(Tensor x, const std::vector<DimArg>& shape) {
  return reshape_to("reshape", x, shape);
}

Tensor squeeze(Tensor x, int axis) {
  const ir::Shape s = node_of(x).shape;
  const int a = normalize_axis("squeeze", axis, static_cast<int64_t>(s.size()));
  if (!s[static_cast<size_t>(a)].is_one()) {
    fail("squeeze", "expected a dim of 1 at axis " + std::to_string(axis) + ", got " +
                        dim_str(s[static_cast<size_t>(a)]) + " in " + shape_str(s));
  }
  std::vector<DimArg> dims;
  for (size_t i = 0; i < s.size(); ++i) {
    if (static_cast<int>(i) == a) continue;
    dims.push_back(DimArg::from_dim(s[i]));
  }
  return reshape_to("squeeze", x, dims);
}

Tensor unsqueeze(Tensor x, int axis) {
  const ir::Shape s = node_of(x).shape;
  const auto rank = static_cast<int64_t>(s.size());
  const int64_t a = axis < 0 ? axis + rank + 1 : axis;
  if (a < 0 || a > rank) {
    fail("unsqueeze", "axis " + std::to_string(axis) + " is out of range: expected [" +
                          std::to_string(-rank - 1) + ", " + std::to_string(rank) + "] for rank " +
                          std::to_string(rank));
  }
  std::vector<DimArg> dims;
  for (int64_t i = 0; i <= rank; ++i) {
    if (i == a) dims.emplace_back(int64_t{1});
    if (i < rank) dims.push_back(DimArg::from_dim(s[static_cast<size_t>(i)]));
  }
  return reshape_to("unsqueeze", x, dims);
}

Tensor expand(Tensor x, std::initializer_list<DimArg> shape) {
  return expand_to("expand", x, std::vector<DimArg>(shape));
}
Tensor expand(Tensor x, const std::vector<DimArg>& shape) { return expand_to("expand", x, shape); }
Tensor broadcast_to(Tensor x, std::initializer_list<DimArg> shape) {
  return expand_to("broadcast_to", x, std::vector<DimArg>(shape));
}
Tensor broadcast_to(Tensor x, const std::vector<DimArg>& shape) {
  return expand_to("broadcast_to", x, shape);
}

Tensor matmul(Tensor a, Tensor b) {
  const auto& na = node_of(a);
  const auto& nb = node_of(b);
  const std::string_view name = "matmul";
  for (const ir::Node* n : {&na, &nb}) {
    if (n->dtype != DType::f32 && n->dtype != DType::f16 && n->dtype != DType::bf16) {
      fail(name, "operands must be f32, f16 or bf16, got " + std::string(dtype_name(n->dtype)));
    }
    if (n->shape.size() < 2) {
      fail(name, "operands must have rank 2 or more ([..., M, K] and [..., K, N]), got rank " +
                     std::to_string(n->shape.size()) + " (kiln::unsqueeze a vector)");
    }
  }
  if (na.dtype != nb.dtype) {
    fail(name, "dtype mismatch: " + std::string(dtype_name(na.dtype)) + " and " +
                   std::string(dtype_name(nb.dtype)) + " (insert kiln::cast)");
  }
  std::optional<ir::Shape> shape = ir::matmul_shape(na.shape, nb.shape);
  if (!shape) {
    fail(name, "shapes " + shape_str(na.shape) + " and " + shape_str(nb.shape) +
                   " do not multiply (expected [..., M, K] and [..., K, N] with broadcastable "
                   "batch dims)");
  }
  // A GEMM's batch stride is one number: each operand's batch dims must be
  // the result's or all 1. One that broadcasts only partly ([2, 1, M, K]
  // against [1, 5, K, N]) is first expanded to the result's batch dims (a
  // copy, the one way to give it a single stride).
  const DType dtype = na.dtype;
  Tensor operands[2] = {a, b};
  for (Tensor& x : operands) {
    const ir::Shape xs = node_of(x).shape;
    if (ir::matmul_batch(xs, *shape) != ir::MatmulBatch::partial) continue;
    ir::Shape target(shape->begin(), shape->end() - 2);
    target.push_back(xs[xs.size() - 2]);
    target.push_back(xs.back());
    x = shape_node(ir::Op::expand, dtype, std::move(target), {x.id()});
  }
  ir::Node out;
  out.op = ir::Op::matmul;
  out.dtype = dtype;
  out.shape = std::move(*shape);
  out.inputs = {operands[0].id(), operands[1].id()};
  return append(std::move(out));
}

namespace {

Tensor permute_as(std::string_view op, Tensor x, const std::vector<int>& perm) {
  const ir::Node* n = node_ptr(x);
  const auto rank = static_cast<int64_t>(n->shape.size());
  if (static_cast<int64_t>(perm.size()) != rank) {
    fail(op, "expected a permutation of " + std::to_string(rank) + " axes (the rank of " +
                 shape_str(n->shape) + "), got " + std::to_string(perm.size()));
  }
  std::vector<int32_t> p;
  for (int axis : perm) {
    const int a = normalize_axis(op, axis, rank);
    if (std::find(p.begin(), p.end(), a) != p.end()) {
      fail(op, "axis " + std::to_string(axis) + " is named twice (as axis " + std::to_string(a) +
                   " of rank " + std::to_string(rank) + ")");
    }
    p.push_back(a);
  }
  // A permute of a permute is one permute of the first one's operand.
  if (n->op == ir::Op::permute) {
    std::vector<int32_t> composed;
    for (int32_t a : p) composed.push_back(n->axes[static_cast<size_t>(a)]);
    p = std::move(composed);
    x = Tensor::from_node(n->inputs[0]);
    n = node_ptr(x);
  }
  bool identity = true;
  for (size_t i = 0; i < p.size(); ++i) identity = identity && p[i] == static_cast<int32_t>(i);
  if (identity) return x;
  ir::Node out;
  out.op = ir::Op::permute;
  out.dtype = n->dtype;
  for (int32_t a : p) out.shape.push_back(n->shape[static_cast<size_t>(a)]);
  out.inputs = {x.id()};
  out.axes = std::move(p);
  return append(std::move(out));
}

}  // namespace

Tensor permute(Tensor x, const std::vector<int>& perm) { return permute_as("permute", x, perm); }

Tensor transpose(Tensor x, int a, int b) {
  const auto rank = static_cast<int64_t>(node_of(x).shape.size());
  const int na = normalize_axis("transpose", a, rank);
  const int nb = normalize_axis("transpose", b, rank);
  std::vector<int> perm(static_cast<size_t>(rank));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int>(i);
  std::swap(perm[static_cast<size_t>(na)], perm[static_cast<size_t>(nb)]);
  return permute_as("transpose", x, perm);
}

Tensor slice(Tensor x, int axis, int64_t start, int64_t stop, int64_t step) {
  const ir::Node& n = node_of(x);
  const int a = normalize_axis("slice", axis, static_cast<int64_t>(n.shape.size()));
  const ir::Dim& d = n.shape[static_cast<size_t>(a)];
  if (!d.is_constant()) {
    fail("slice", "expected a constant dim at axis " + std::to_string(axis) + ", got " +
                      dim_str(d) + " in " + shape_str(n.shape));
  }
  if (step < 1) fail("slice", "expected a step >= 1, got " + std::to_string(step));
  const int64_t dim = d.value;
  auto clamp = [&](int64_t v) {
    if (v < 0) v = v < -dim ? 0 : v + dim;
    return std::min(v, dim);
  };
  const int64_t b = clamp(start);
  const int64_t e = clamp(stop);
  if (e <= b) {
    fail("slice", "expected at least one element, got the empty slice " + std::to_string(start) +
                      ":" + std::to_string(stop) + " of a dim of " + std::to_string(dim));
  }
  const int64_t count = (e - b + step - 1) / step;
  if (count == dim) return x;
  ir::Node out;
  out.op = ir::Op::slice;
  out.dtype = n.dtype;
  out.shape = n.shape;
  out.shape[static_cast<size_t>(a)] = ir::Dim::constant(count);
  out.inputs = {x.id()};
  out.axis = a;
  out.params = {b, e, step};
  return append(std::move(out));
}

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) fail("concat", "expected one or more tensors, got none");
  const ir::Node& first = node_of(xs[0]);
  const auto rank = static_cast<int64_t>(first.shape.size());
  if (rank == 0) fail("concat", "cannot join rank-0 tensors (unsqueeze them first)");
  const int a = normalize_axis("concat", axis, rank);
  if (xs.size() == 1) return xs[0];
  ir::Shape shape = first.shape;
  int64_t total = 0;
  std::vector<int32_t> ids;
  for (size_t k = 0; k < xs.size(); ++k) {
    const ir::Node& n = node_of(xs[k]);
    if (n.dtype != first.dtype) {
      fail("concat", "dtype mismatch: tensor " + std::to_string(k) + " is " +
                         std::string(dtype_name(n.dtype)) + ", expected " +
                         std::string(dtype_name(first.dtype)) + " (insert kiln::cast)");
    }
    ir::Shape other = n.shape;
    if (other.size() == shape.size()) other[static_cast<size_t>(a)] = shape[static_cast<size_t>(a)];
    if (other != shape) {
      fail("concat", "tensor " + std::to_string(k) + " is " + shape_str(n.shape) + "; expected " +
                         shape_str(first.shape) + " but along axis " + std::to_string(a));
    }
    const ir::Dim& d = n.shape[static_cast<size_t>(a)];
    if (!d.is_constant()) {
      fail("concat", "expected a constant size along axis " + std::to_string(a) + ", got " +
                         dim_str(d) + " for tensor " + std::to_string(k) +
                         " (a dim is one constant or one symbol, not a sum)");
    }
    total += d.value;
    ids.push_back(xs[k].id());
  }
  shape[static_cast<size_t>(a)] = ir::Dim::constant(total);
  ir::Node out;
  out.op = ir::Op::concat;
  out.dtype = first.dtype;
  out.shape = std::move(shape);
  out.inputs = std::move(ids);
  out.axis = a;
  return append(std::move(out));
}

Tensor gather(Tensor table, Tensor indices, int axis) {
  return gather_along("gather", table, indices, axis);
}

Tensor embedding(Tensor table, Tensor ids) { return gather_along("embedding", table, ids, 0); }

Tensor iota(std::initializer_list<DimArg> shape, int axis, DType dtype) {
  return iota(std::vector<DimArg>(shape), axis, dtype);
}

Tensor iota(const std::vector<DimArg>& shape, int axis, DType dtype) {
  if (shape.empty()) fail("iota", "expected a shape of rank >= 1, got []");
  check_rank("iota", shape.size());
  if (dtype == DType::boolean) fail("iota", "expected a numeric dtype, got bool");
  ir::Node out;
  out.op = ir::Op::iota;
  out.dtype = dtype;
  for (const auto& d : shape) out.shape.push_back(checked_dim("iota", d));
  out.axis = normalize_axis("iota", axis, static_cast<int64_t>(shape.size()));
  return append(std::move(out));
}

namespace {

// 16-bit floats are computed in f32 and cast back, as PyTorch does.
DType compute_type(DType t) { return (t == DType::f16 || t == DType::bf16) ? DType::f32 : t; }

}  // namespace

Tensor softmax(Tensor x, int axis) {
  const DType io = x.dtype();
  require_float("softmax", node_of(x));
  Tensor xf = cast(x, compute_type(io));
  Tensor e = exp(xf - max(xf, axis, true));
  return cast(e / sum(e, axis, true), io);
}

Tensor log_softmax(Tensor x, int axis) {
  const DType io = x.dtype();
  require_float("log_softmax", node_of(x));
  Tensor xf = cast(x, compute_type(io));
  Tensor d = xf - max(xf, axis, true);
  return cast(d - log(sum(exp(d), axis, true)), io);
}

Tensor layernorm(Tensor x, Tensor weight, Tensor bias, double eps) {
  const DType io = x.dtype();
  require_float("layernorm", node_of(x));
  const DType ct = compute_type(io);
  Tensor xf = cast(x, ct);
  Tensor d = xf - mean(xf, -1, true);
  Tensor var = mean(square(d), -1, true);
  Tensor y = d * rsqrt(var + eps);
  return cast(y * cast(weight, ct) + cast(bias, ct), io);
}

Tensor rmsnorm(Tensor x, Tensor weight, double eps) {
  const DType io = x.dtype();
  require_float("rmsnorm", node_of(x));
  Tensor xf = cast(x, compute_type(io));
  Tensor r = rsqrt(mean(square(xf), -1, true) + eps);
  return cast(xf * r, io) * weight;
}

Outputs& Outputs::named(std::initializer_list<std::string> names) {
  names_ = names;
  return *this;
}

GraphRegistration::GraphRegistration(const char* name, GraphFunction function,
                                     const char* source_file) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  auto [it, inserted] = r.graphs.emplace(name, RegisteredGraph{name, function, source_file});
  if (!inserted) {
    r.duplicates.push_back(std::string(name) + " (in " + it->second.source_file + " and " +
                           source_file + ")");
  }
}

std::vector<RegisteredGraph> registered_graphs() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  if (!r.duplicates.empty()) {
    std::string msg = "kiln: graphs registered twice:";
    for (const auto& d : r.duplicates) msg += " " + d;
    throw TraceError(msg);
  }
  std::vector<RegisteredGraph> out;
  for (const auto& [name, g] : r.graphs) out.push_back(g);
  return out;
}

void graph_targets(std::initializer_list<std::string_view> targets) {
  Tracer& t = tracer("graph_targets");
  const auto refuse = [&](const std::string& why) {
    throw TraceError("kiln: graph '" + t.graph.name + "': graph_targets: " + why);
  };
  if (t.targets_declared) refuse("called twice; list every target in one call");
  if (targets.size() == 0) refuse("expected at least one target, e.g. {\"cpu:x86-64\"}");
  std::vector<std::string> names;
  for (std::string_view target : targets) {
    try {
      (void)compiler::parse_target(std::string(target));
    } catch (const std::invalid_argument& e) {
      refuse(e.what());
    }
    if (std::find(names.begin(), names.end(), target) != names.end()) {
      refuse("target '" + std::string(target) + "' is listed twice");
    }
    names.emplace_back(target);
  }
  t.targets_declared = true;
  t.graph.declared_targets = std::move(names);
}

ir::Graph trace(const std::string& name, GraphFunction function) {
  if (g_tracer != nullptr) throw TraceError("kiln: trace('" + name + "') called while tracing");
  if (!is_usable_cpp_name(name) || name == "package" || name == "loaded_package") {
    throw TraceError("kiln: graph name '" + name +
                     "' must be a C++ identifier that is not a keyword, a reserved name, "
                     "'package' or 'loaded_package' (the generated header uses those)");
  }
  Tracer t;
  t.graph.name = name;
  g_tracer = &t;
  struct Reset {
    ~Reset() { g_tracer = nullptr; }
  } reset;
  Outputs outs = function();
  if (outs.tensors().empty()) fail("outputs", "a graph must return at least one tensor");
  const auto& names = outs.names();
  if (!names.empty() && names.size() != outs.tensors().size()) {
    fail("outputs", std::to_string(names.size()) + " names for " +
                        std::to_string(outs.tensors().size()) + " outputs");
  }
  std::set<std::string> seen;
  for (int32_t id : t.graph.inputs) seen.insert(t.graph.node(id).name);
  for (size_t i = 0; i < outs.tensors().size(); ++i) {
    const Tensor& o = outs.tensors()[i];
    (void)node_of(o);
    std::string out_name = names.empty() ? "out" + std::to_string(i) : names[i];
    if (!is_usable_cpp_name(out_name)) {
      fail("outputs", "output name '" + out_name +
                          "' must be a C++ identifier that is not a keyword or reserved name");
    }
    if (!seen.insert(out_name).second) fail("outputs", "name '" + out_name + "' is used twice");
    t.graph.outputs.push_back(o.id());
    t.graph.output_names.push_back(std::move(out_name));
  }
  return std::move(t.graph);
}

}  // namespace kiln
