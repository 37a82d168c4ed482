// Tracing: each op checks its operands, appends one node to the graph being
// traced, and returns it. Errors name the graph and the op.
#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <set>

#include "kiln/graph.h"

namespace kiln {
namespace {

struct Tracer {
  ir::Graph graph;
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

Tensor scalar_like(double value, Tensor like) { return constant(value, node_of(like).dtype); }

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

bool is_identifier(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
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
  if (!is_identifier(s)) return false;
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
  if (!is_identifier(name)) fail(op, "symbol names must be C identifiers");
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
Tensor pow(Tensor a, double b) { return pow(a, scalar_like(b, a)); }
Tensor maximum(Tensor a, double b) { return maximum(a, scalar_like(b, a)); }
Tensor minimum(Tensor a, double b) { return minimum(a, scalar_like(b, a)); }
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
Tensor operator+(Tensor a, double b) { return add(a, scalar_like(b, a)); }
Tensor operator-(Tensor a, double b) { return sub(a, scalar_like(b, a)); }
Tensor operator*(Tensor a, double b) { return mul(a, scalar_like(b, a)); }
Tensor operator/(Tensor a, double b) { return div(a, scalar_like(b, a)); }
Tensor operator+(double a, Tensor b) { return add(scalar_like(a, b), b); }
Tensor operator-(double a, Tensor b) { return sub(scalar_like(a, b), b); }
Tensor operator*(double a, Tensor b) { return mul(scalar_like(a, b), b); }
Tensor operator/(double a, Tensor b) { return div(scalar_like(a, b), b); }
Tensor operator-(Tensor x) { return neg(x); }
Tensor operator<(Tensor a, Tensor b) { return lt(a, b); }
Tensor operator<=(Tensor a, Tensor b) { return le(a, b); }
Tensor operator>(Tensor a, Tensor b) { return gt(a, b); }
Tensor operator>=(Tensor a, Tensor b) { return ge(a, b); }
Tensor operator<(Tensor a, double b) { return lt(a, scalar_like(b, a)); }
Tensor operator>(Tensor a, double b) { return gt(a, scalar_like(b, a)); }

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
  // Each operand's batch dims are the result's or all 1: a GEMM batch
  // stride is one number.
  for (const ir::Node* n : {&na, &nb}) {
    const size_t pb = n->shape.size() - 2;
    const size_t ob = shape->size() - 2;
    bool ones = true;
    bool full = true;
    for (size_t i = 0; i < ob; ++i) {
      const ir::Dim got = i + pb >= ob ? n->shape[i + pb - ob] : ir::Dim::constant(1);
      ones = ones && got.is_one();
      full = full && got == (*shape)[i];
    }
    if (!ones && !full) {
      fail(name, "the batch dims of " + shape_str(n->shape) + " broadcast only partly to " +
                     shape_str(ir::Shape(shape->begin(), shape->end() - 2)) +
                     " (expected all of them or none; broadcast the operand first)");
    }
  }
  ir::Node out;
  out.op = ir::Op::matmul;
  out.dtype = na.dtype;
  out.shape = std::move(*shape);
  out.inputs = {a.id(), b.id()};
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
