/// @file
/// The graph API: C++ that declares graphs. Each KILN_GRAPH body runs once, at
/// build time, with symbolic tensors; every op appends a node to an ir::Graph.
/// Nothing here is compiled into the application.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/compiler/ir.h"
#include "kiln/dtype.h"

namespace kiln {

/// 32-bit float: kiln::DType::f32, spelled as the graph API spells dtypes.
inline constexpr DType f32 = DType::f32;
/// 16-bit IEEE float; computed in f32 and rounded after every op.
inline constexpr DType f16 = DType::f16;
/// bfloat16; computed in f32 and rounded after every op.
inline constexpr DType bf16 = DType::bf16;
/// 64-bit float.
inline constexpr DType f64 = DType::f64;
/// 32-bit signed integer; arithmetic wraps.
inline constexpr DType i32 = DType::i32;
/// 64-bit signed integer.
inline constexpr DType i64 = DType::i64;
/// Boolean (`bool`, one byte).
inline constexpr DType boolean = DType::boolean;

/// A shape or dtype error found while tracing; names the graph and the op.
class TraceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The range and hints of a symbol (kiln::sym).
struct SymOptions {
  /// The smallest size a call may pass (at least 1).
  int64_t min = 1;
  /// The largest size a call may pass.
  int64_t max = (int64_t{1} << 31) - 1;
  /// Sizes that get a static specialization. (`= {}`: {.min = 1, .max = 8}
  /// may leave it out without -Wmissing-field-initializers.)
  std::vector<int64_t> hot = {};
  /// Every size is a multiple of this (a guard checks it).
  int64_t divisible_by = 1;
};

/// A named size, known only at run time, in [min, max].
class SymDim {
 public:
  /// The symbol's index in its graph.
  int32_t index() const { return index_; }

 private:
  friend SymDim sym(std::string name, SymOptions options);
  explicit SymDim(int32_t index) : index_(index) {}
  int32_t index_;
};

/// One entry of a shape: a constant or a symbol.
/// One entry of a shape: a constant or a symbol. Converts implicitly from both.
class DimArg {
 public:
  /// A constant dim (at least 1; -1 where an op says it infers or keeps one).
  DimArg(int64_t value) : dim_(ir::Dim::constant(value)) {}  // NOLINT(google-explicit-constructor)
  /// A constant dim, as DimArg(int64_t).
  DimArg(int value) : dim_(ir::Dim::constant(value)) {}  // NOLINT(google-explicit-constructor)
  /// A symbolic dim.
  DimArg(SymDim s) : dim_(ir::Dim::symbol(s.index())) {}  // NOLINT(google-explicit-constructor)
  /// Internal: a dim taken from a traced tensor's shape.
  static DimArg from_dim(const ir::Dim& d) {
    DimArg a(int64_t{0});
    a.dim_ = d;
    return a;
  }
  /// The dim, as the IR stores it.
  const ir::Dim& dim() const { return dim_; }

 private:
  ir::Dim dim_;
};

/// A symbolic tensor: a node of the graph being traced.
class Tensor {
 public:
  /// The node's index in the graph being traced.
  int32_t id() const { return id_; }
  /// The tensor's dtype. @throws TraceError outside a KILN_GRAPH body.
  DType dtype() const;
  /// The tensor's shape (constant and symbolic dims). @throws TraceError outside a KILN_GRAPH body.
  const ir::Shape& shape() const;
  /// The number of dims (0 for a scalar).
  int64_t rank() const { return static_cast<int64_t>(shape().size()); }

  /// Internal: wraps a node id of the graph being traced.
  static Tensor from_node(int32_t id) { return Tensor(id); }

 private:
  explicit Tensor(int32_t id) : id_(id) {}
  int32_t id_;
};

/// Declares a symbol: a size known only at run time, in [options.min, options.max].
/// Each hot value gets a static specialization. @throws TraceError for a name that
/// is not a C identifier or is declared twice, min < 1, max < min, divisible_by < 1,
/// or a hot value outside the range or not divisible. At most 32 symbols per graph
/// (kMaxSymbols): the runtime refuses a package with more when it opens.
SymDim sym(std::string name, SymOptions options = {});
/// Declares the graph's next input (inputs are passed in declaration order).
/// @throws TraceError for a name that is not a usable C++ identifier or is
/// declared twice, a rank above 8, a constant dim below 1, or another graph's symbol.
Tensor input(std::string name, DType dtype, std::initializer_list<DimArg> shape);
/// input() with the shape in a vector.
Tensor input(std::string name, DType dtype, const std::vector<DimArg>& shape);
/// A scalar constant (shape []) broadcast where it is used.
Tensor constant(double value, DType dtype = DType::f32);

// Unary.
/// -x; numeric dtypes (not bool). Unary ops keep x's dtype and shape.
Tensor neg(Tensor x);
/// |x|; numeric dtypes.
Tensor abs(Tensor x);
/// e^x; float dtypes. @throws TraceError for a non-float x, as every float-only op.
Tensor exp(Tensor x);
/// The natural logarithm; float dtypes.
Tensor log(Tensor x);
/// sin x; float dtypes.
Tensor sin(Tensor x);
/// cos x; float dtypes.
Tensor cos(Tensor x);
/// tanh x; float dtypes.
Tensor tanh(Tensor x);
/// 1 / (1 + e^-x); float dtypes.
Tensor sigmoid(Tensor x);
/// max(x, 0); numeric dtypes.
Tensor relu(Tensor x);
/// 0.5 x (1 + erf(x / sqrt 2)), the exact erf form; float dtypes.
Tensor gelu(Tensor x);
/// The square root; float dtypes.
Tensor sqrt(Tensor x);
/// 1 / sqrt(x); float dtypes.
Tensor rsqrt(Tensor x);
/// x * x; numeric dtypes.
Tensor square(Tensor x);
/// !x; bool only.
Tensor logical_not(Tensor x);
/// x converted to `to` (any dtype to any); x itself when it already has it.
Tensor cast(Tensor x, DType to);

// Binary, with NumPy broadcasting. A scalar operand becomes a constant of the
// other operand's dtype.
/// a + b; numeric dtypes. Binary ops need one dtype on both sides (no promotion)
/// and broadcast by NumPy's rules. @throws TraceError for mixed dtypes, a dtype the
/// op does not take, or shapes that do not broadcast.
Tensor add(Tensor a, Tensor b);
/// a - b; numeric dtypes.
Tensor sub(Tensor a, Tensor b);
/// a * b; numeric dtypes.
Tensor mul(Tensor a, Tensor b);
/// a / b; float dtypes (no integer division).
Tensor div(Tensor a, Tensor b);
/// The larger of a and b, elementwise; a NaN gives NaN. Numeric dtypes.
Tensor maximum(Tensor a, Tensor b);
/// The smaller of a and b, elementwise; a NaN gives NaN. Numeric dtypes.
Tensor minimum(Tensor a, Tensor b);
Tensor max(Tensor a, Tensor b);  ///< same as maximum
Tensor min(Tensor a, Tensor b);  ///< same as minimum
/// a to the power b; float dtypes.
Tensor pow(Tensor a, Tensor b);
/// a to the power of the constant b (of a's dtype).
Tensor pow(Tensor a, double b);
/// maximum() with the constant b (of a's dtype).
Tensor maximum(Tensor a, double b);
/// minimum() with the constant b (of a's dtype).
Tensor minimum(Tensor a, double b);
/// a == b, as bool; every dtype, bool included. Tensor has no operator==.
Tensor eq(Tensor a, Tensor b);
/// a != b, as bool; every dtype, bool included.
Tensor ne(Tensor a, Tensor b);
/// a < b, as bool; numeric dtypes.
Tensor lt(Tensor a, Tensor b);
/// a <= b, as bool; numeric dtypes.
Tensor le(Tensor a, Tensor b);
/// a > b, as bool; numeric dtypes.
Tensor gt(Tensor a, Tensor b);
/// a >= b, as bool; numeric dtypes.
Tensor ge(Tensor a, Tensor b);
/// a where cond is true, else b; cond is bool, a and b of one dtype, all three broadcast.
/// @throws TraceError for a non-bool cond, mixed dtypes or shapes that do not broadcast.
Tensor where(Tensor cond, Tensor a, Tensor b);

/// add(a, b).
Tensor operator+(Tensor a, Tensor b);
/// sub(a, b).
Tensor operator-(Tensor a, Tensor b);
/// mul(a, b).
Tensor operator*(Tensor a, Tensor b);
/// div(a, b).
Tensor operator/(Tensor a, Tensor b);
/// a + b, b a constant of a's dtype (truncated for integers); the scalar forms below likewise.
Tensor operator+(Tensor a, double b);
/// a - b.
Tensor operator-(Tensor a, double b);
/// a * b.
Tensor operator*(Tensor a, double b);
/// a / b; float dtypes.
Tensor operator/(Tensor a, double b);
/// a + b.
Tensor operator+(double a, Tensor b);
/// a - b.
Tensor operator-(double a, Tensor b);
/// a * b.
Tensor operator*(double a, Tensor b);
/// a / b; float dtypes.
Tensor operator/(double a, Tensor b);
/// neg(x).
Tensor operator-(Tensor x);
/// lt(a, b).
Tensor operator<(Tensor a, Tensor b);
/// le(a, b).
Tensor operator<=(Tensor a, Tensor b);
/// gt(a, b).
Tensor operator>(Tensor a, Tensor b);
/// ge(a, b).
Tensor operator>=(Tensor a, Tensor b);
/// lt(a, b), b a constant of a's dtype.
Tensor operator<(Tensor a, double b);
/// gt(a, b), b a constant of a's dtype.
Tensor operator>(Tensor a, double b);

/// Reductions over one axis or several (`kiln::sum(x, {0, 2}, true)`); negative
/// axes count from the end. An axis out of range or named twice is a
/// TraceError. keepdim keeps each reduced axis as a dim of 1. Sums, means and
/// products of 16-bit floats accumulate in f32 (or wider) and round once.
/// max/min ignore a NaN unless every value is NaN (as fmax/fmin).
Tensor sum(Tensor x, int axis = -1, bool keepdim = false);
/// The mean along `axis`; float dtypes.
Tensor mean(Tensor x, int axis = -1, bool keepdim = false);
/// The largest value along `axis` (no default axis: max(a, b) is the elementwise one).
Tensor max(Tensor x, int axis, bool keepdim = false);
/// The smallest value along `axis`.
Tensor min(Tensor x, int axis, bool keepdim = false);
/// The product along `axis`; numeric dtypes.
Tensor prod(Tensor x, int axis = -1, bool keepdim = false);
/// The sum over several axes; a rank-0 result when they are all of x's.
Tensor sum(Tensor x, const std::vector<int>& axes, bool keepdim = false);
/// The mean over several axes; float dtypes.
Tensor mean(Tensor x, const std::vector<int>& axes, bool keepdim = false);
/// The largest value over several axes.
Tensor max(Tensor x, const std::vector<int>& axes, bool keepdim = false);
/// The smallest value over several axes.
Tensor min(Tensor x, const std::vector<int>& axes, bool keepdim = false);
/// The product over several axes.
Tensor prod(Tensor x, const std::vector<int>& axes, bool keepdim = false);
/// Every axis of x, for a reduction over the whole tensor: sum(x, all_axes(x)).
std::vector<int> all_axes(Tensor x);
/// The i64 index along `axis` of the largest value; the first one on ties. A
/// NaN counts as larger than any number, so the first NaN wins (as torch.argmax).
Tensor argmax(Tensor x, int axis = -1, bool keepdim = false);

/// Matrix product of a [..., M, K] and b [..., K, N]: [..., M, N], with the
/// batch dims broadcast (NumPy rules; an operand whose batch dims broadcast
/// only partly is expanded to the result's first, a copy). f32, f16 or bf16, both the same dtype;
/// products accumulate in f32 and the result is rounded once to the dtype,
/// as torch.matmul on a GPU. CUDA runs it through cuBLASLt; a following
/// scale by a constant, bias add ([N]) and relu run in its epilogue.
Tensor matmul(Tensor a, Tensor b);

// Shape ops (docs/codegen.md says how each lowers: views cost no copy where
// they can). Negative axes count from the end; an axis out of range is a
// TraceError, as is any shape that does not follow from the operand's.
///
/// reshape: the same elements, in row-major order, in `shape`. Dims may be
/// symbols; one may be -1, inferred from the rest. The element counts must be
/// equal as products of symbols: the same symbols (with multiplicity) and the
/// same constant product, so [n, 4] reshapes to [2, n, 2] but not to [n * 4]
/// spelled as another symbol.
Tensor reshape(Tensor x, std::initializer_list<DimArg> shape);
/// reshape() with the shape in a vector.
Tensor reshape(Tensor x, const std::vector<DimArg>& shape);
Tensor squeeze(Tensor x, int axis);    ///< removes `axis`, which must be a dim of 1
Tensor unsqueeze(Tensor x, int axis);  ///< inserts a dim of 1 at `axis`, in [-rank - 1, rank]
/// NumPy broadcasting to `shape`: dims of 1 stretch, new dims come on the
/// left; -1 keeps the operand's dim there.
Tensor expand(Tensor x, std::initializer_list<DimArg> shape);
/// expand() with the shape in a vector.
Tensor expand(Tensor x, const std::vector<DimArg>& shape);
Tensor broadcast_to(Tensor x, std::initializer_list<DimArg> shape);  ///< same as expand
/// broadcast_to() with the shape in a vector.
Tensor broadcast_to(Tensor x, const std::vector<DimArg>& shape);
/// Dim i of the result is dim perm[i] of x.
Tensor permute(Tensor x, const std::vector<int>& perm);
Tensor transpose(Tensor x, int a, int b);  ///< swaps two axes
/// x[start:stop:step] along `axis`, which must have a constant size. Python's
/// rules: a negative start or stop counts from the end, both clamp to the dim
/// (so a large stop reads to the end); step >= 1; an empty slice is an error.
Tensor slice(Tensor x, int axis, int64_t start, int64_t stop, int64_t step = 1);
/// Joins tensors of one dtype and rank along `axis`: every other dim must be
/// equal, and the sizes along `axis` constants.
Tensor concat(const std::vector<Tensor>& xs, int axis);
/// index_select: the result's shape is table.shape[:axis] ++ indices.shape ++
/// table.shape[axis + 1:]; indices are i32 or i64. An index in [-V, -1]
/// counts from the end (V = table.shape[axis]). An index outside [-V, V)
/// never reads out of bounds: its elements are a fill value instead, as
/// JAX's gather mode 'fill' does: NaN for floats, the lowest value for
/// signed integers (INT32_MIN, INT64_MIN), true for bool.
Tensor gather(Tensor table, Tensor indices, int axis = 0);
/// An embedding lookup, gather(table, ids, 0): rows of a [V, D] table.
Tensor embedding(Tensor table, Tensor ids);
/// Each element's index along `axis`, in `dtype` (not bool). A causal mask:
/// where(iota({n, 1}, 0) >= iota({1, n}, 1), s, constant(-INFINITY)).
Tensor iota(std::initializer_list<DimArg> shape, int axis, DType dtype = DType::i64);
/// iota() with the shape in a vector.
Tensor iota(const std::vector<DimArg>& shape, int axis, DType dtype = DType::i64);

// Composites, built from the ops above (computed in f32 for f16/bf16 input and
// cast back, as PyTorch does).
/// exp(x - max) / sum(exp(x - max)) along `axis`; float dtypes.
Tensor softmax(Tensor x, int axis = -1);
/// x - max - log(sum(exp(x - max))) over `axis`: stable for large |x|.
Tensor log_softmax(Tensor x, int axis = -1);
/// (x - mean) / sqrt(var + eps) * weight + bias over the last axis, var the biased
/// variance (as torch.nn.LayerNorm); float x. weight and bias broadcast against x
/// and are cast to the compute type.
Tensor layernorm(Tensor x, Tensor weight, Tensor bias, double eps = 1e-5);
/// cast(x / sqrt(mean(x^2) + eps), x's dtype) * weight over the last axis; float x,
/// weight of x's dtype (the product with it is computed in that dtype).
Tensor rmsnorm(Tensor x, Tensor weight, double eps = 1e-6);

/// What a graph returns.
/// What a graph returns: one or more tensors, optionally named.
class Outputs {
 public:
  /// The outputs, in the order the generated function takes them.
  Outputs(std::initializer_list<Tensor> tensors) : tensors_(tensors) {}
  /// The outputs, from a vector.
  explicit Outputs(std::vector<Tensor> tensors) : tensors_(std::move(tensors)) {}
  /// Names the outputs in order; unnamed outputs are out0, out1, ...
  Outputs& named(std::initializer_list<std::string> names);
  /// The output tensors.
  const std::vector<Tensor>& tensors() const { return tensors_; }
  /// The names given by named(); empty if none.
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<Tensor> tensors_;
  std::vector<std::string> names_;
};

/// The graph's outputs: `return kiln::outputs(y, kiln::sum(y, -1));`.
template <typename... Ts>
Outputs outputs(Ts... ts) {
  return Outputs({ts...});
}

/// Builds this graph only for these targets ("cpu:x86-64", "cuda:sm_90"), e.g.
/// `kiln::graph_targets({"cpu:x86-64", "cpu:x86-64-v3"});` in a KILN_GRAPH body
/// that no CUDA compiler should see. Targets the package is not built for are
/// ignored; the graph gets the ones it shares with the package's TARGETS (and
/// with GRAPH_TARGETS, where add_precompiled_graphs() names it too): none in
/// common is a generator error. A call on a device none of them runs on fails
/// (docs/runtime.md). Call it at most once per body. @throws TraceError for an
/// empty list, a name that is not a target, a target listed twice, or a second call.
void graph_targets(std::initializer_list<std::string_view> targets);

/// A graph body: what KILN_GRAPH defines.
using GraphFunction = Outputs (*)();

/// A graph registered by KILN_GRAPH.
struct RegisteredGraph {
  /// The graph's name.
  std::string name;
  /// Its body.
  GraphFunction function;
  /// The file that declared it.
  std::string source_file;
};

/// Static registration, as HALIDE_REGISTER_GENERATOR does it.
class GraphRegistration {
 public:
  /// Registers `function` as graph `name`; a name registered twice is reported by
  /// registered_graphs().
  GraphRegistration(const char* name, GraphFunction function, const char* source_file);
};

/// Every graph registered in this program, sorted by name.
std::vector<RegisteredGraph> registered_graphs();

/// Runs one graph function under a fresh tracer and returns its IR. Throws
/// TraceError naming the graph and the op on a shape or dtype error.
ir::Graph trace(const std::string& name, GraphFunction function);

}  // namespace kiln

/// Declares and registers graph NAME, whose body follows in braces and returns
/// kiln::outputs(...). NAME is the generated function's name: a C++ identifier
/// that is not a keyword, a reserved name, `package` or `loaded_package`.
#define KILN_GRAPH(NAME)                                                 \
  static ::kiln::Outputs kiln_graph_fn_##NAME();                         \
  static const ::kiln::GraphRegistration kiln_graph_registration_##NAME( \
      #NAME, &kiln_graph_fn_##NAME, __FILE__);                           \
  static ::kiln::Outputs kiln_graph_fn_##NAME()
