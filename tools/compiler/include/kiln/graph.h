// The graph API: C++ that declares graphs. Each KILN_GRAPH body runs once, at
// build time, with symbolic tensors; every op appends a node to an ir::Graph.
// Nothing here is compiled into the application.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/compiler/ir.h"
#include "kiln/dtype.h"

namespace kiln {

inline constexpr DType f32 = DType::f32;
inline constexpr DType f16 = DType::f16;
inline constexpr DType bf16 = DType::bf16;
inline constexpr DType f64 = DType::f64;
inline constexpr DType i32 = DType::i32;
inline constexpr DType i64 = DType::i64;
inline constexpr DType boolean = DType::boolean;

// A shape or dtype error found while tracing; names the graph and the op.
class TraceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SymOptions {
  int64_t min = 1;
  int64_t max = (int64_t{1} << 31) - 1;
  std::vector<int64_t> hot;  // sizes that get a static specialization
  int64_t divisible_by = 1;
};

// A named size, known only at run time, in [min, max].
class SymDim {
 public:
  int32_t index() const { return index_; }

 private:
  friend SymDim sym(std::string name, SymOptions options);
  explicit SymDim(int32_t index) : index_(index) {}
  int32_t index_;
};

// One entry of a shape: a constant or a symbol.
class DimArg {
 public:
  DimArg(int64_t value) : dim_(ir::Dim::constant(value)) {}  // NOLINT(google-explicit-constructor)
  DimArg(int value) : dim_(ir::Dim::constant(value)) {}      // NOLINT(google-explicit-constructor)
  DimArg(SymDim s) : dim_(ir::Dim::symbol(s.index())) {}     // NOLINT(google-explicit-constructor)
  // Internal: a dim taken from a traced tensor's shape.
  static DimArg from_dim(const ir::Dim& d) {
    DimArg a(int64_t{0});
    a.dim_ = d;
    return a;
  }
  const ir::Dim& dim() const { return dim_; }

 private:
  ir::Dim dim_;
};

// A symbolic tensor: a node of the graph being traced.
class Tensor {
 public:
  int32_t id() const { return id_; }
  DType dtype() const;
  const ir::Shape& shape() const;
  int64_t rank() const { return static_cast<int64_t>(shape().size()); }

  // Internal: wraps a node id of the graph being traced.
  static Tensor from_node(int32_t id) { return Tensor(id); }

 private:
  explicit Tensor(int32_t id) : id_(id) {}
  int32_t id_;
};

SymDim sym(std::string name, SymOptions options = {});
Tensor input(std::string name, DType dtype, std::initializer_list<DimArg> shape);
Tensor input(std::string name, DType dtype, const std::vector<DimArg>& shape);
// A scalar constant (shape []) broadcast where it is used.
Tensor constant(double value, DType dtype = DType::f32);

// Unary.
Tensor neg(Tensor x);
Tensor abs(Tensor x);
Tensor exp(Tensor x);
Tensor log(Tensor x);
Tensor sin(Tensor x);
Tensor cos(Tensor x);
Tensor tanh(Tensor x);
Tensor sigmoid(Tensor x);
Tensor relu(Tensor x);
Tensor gelu(Tensor x);
Tensor sqrt(Tensor x);
Tensor rsqrt(Tensor x);
Tensor square(Tensor x);
Tensor logical_not(Tensor x);
Tensor cast(Tensor x, DType to);

// Binary, with NumPy broadcasting. A scalar operand becomes a constant of the
// other operand's dtype.
Tensor add(Tensor a, Tensor b);
Tensor sub(Tensor a, Tensor b);
Tensor mul(Tensor a, Tensor b);
Tensor div(Tensor a, Tensor b);
Tensor maximum(Tensor a, Tensor b);
Tensor minimum(Tensor a, Tensor b);
Tensor max(Tensor a, Tensor b);  // same as maximum
Tensor min(Tensor a, Tensor b);  // same as minimum
Tensor pow(Tensor a, Tensor b);
Tensor pow(Tensor a, double b);
Tensor maximum(Tensor a, double b);
Tensor minimum(Tensor a, double b);
Tensor eq(Tensor a, Tensor b);
Tensor ne(Tensor a, Tensor b);
Tensor lt(Tensor a, Tensor b);
Tensor le(Tensor a, Tensor b);
Tensor gt(Tensor a, Tensor b);
Tensor ge(Tensor a, Tensor b);
Tensor where(Tensor cond, Tensor a, Tensor b);

Tensor operator+(Tensor a, Tensor b);
Tensor operator-(Tensor a, Tensor b);
Tensor operator*(Tensor a, Tensor b);
Tensor operator/(Tensor a, Tensor b);
Tensor operator+(Tensor a, double b);
Tensor operator-(Tensor a, double b);
Tensor operator*(Tensor a, double b);
Tensor operator/(Tensor a, double b);
Tensor operator+(double a, Tensor b);
Tensor operator-(double a, Tensor b);
Tensor operator*(double a, Tensor b);
Tensor operator/(double a, Tensor b);
Tensor operator-(Tensor x);
Tensor operator<(Tensor a, Tensor b);
Tensor operator<=(Tensor a, Tensor b);
Tensor operator>(Tensor a, Tensor b);
Tensor operator>=(Tensor a, Tensor b);
Tensor operator<(Tensor a, double b);
Tensor operator>(Tensor a, double b);

// Reductions over one axis or several (`kiln::sum(x, {0, 2}, true)`); negative
// axes count from the end. An axis out of range or named twice is a
// TraceError. keepdim keeps each reduced axis as a dim of 1. Sums, means and
// products of 16-bit floats accumulate in f32 (or wider) and round once.
// max/min ignore a NaN unless every value is NaN (as fmax/fmin).
Tensor sum(Tensor x, int axis = -1, bool keepdim = false);
Tensor mean(Tensor x, int axis = -1, bool keepdim = false);
Tensor max(Tensor x, int axis, bool keepdim = false);
Tensor min(Tensor x, int axis, bool keepdim = false);
Tensor prod(Tensor x, int axis = -1, bool keepdim = false);
Tensor sum(Tensor x, const std::vector<int>& axes, bool keepdim = false);
Tensor mean(Tensor x, const std::vector<int>& axes, bool keepdim = false);
Tensor max(Tensor x, const std::vector<int>& axes, bool keepdim = false);
Tensor min(Tensor x, const std::vector<int>& axes, bool keepdim = false);
Tensor prod(Tensor x, const std::vector<int>& axes, bool keepdim = false);
// Every axis of x, for a reduction over the whole tensor: sum(x, all_axes(x)).
std::vector<int> all_axes(Tensor x);
// The i64 index along `axis` of the largest value; the first one on ties. A
// NaN counts as larger than any number, so the first NaN wins (as torch.argmax).
Tensor argmax(Tensor x, int axis = -1, bool keepdim = false);

// Matrix product of a [..., M, K] and b [..., K, N]: [..., M, N], with the
// batch dims broadcast (NumPy rules; an operand whose batch dims broadcast
// only partly is expanded to the result's first, a copy). f32, f16 or bf16, both the same dtype;
// products accumulate in f32 and the result is rounded once to the dtype,
// as torch.matmul on a GPU. CUDA runs it through cuBLASLt; a following
// scale by a constant, bias add ([N]) and relu run in its epilogue.
Tensor matmul(Tensor a, Tensor b);

// Shape ops (docs/codegen.md says how each lowers: views cost no copy where
// they can). Negative axes count from the end; an axis out of range is a
// TraceError, as is any shape that does not follow from the operand's.
//
// reshape: the same elements, in row-major order, in `shape`. Dims may be
// symbols; one may be -1, inferred from the rest. The element counts must be
// equal as products of symbols: the same symbols (with multiplicity) and the
// same constant product, so [n, 4] reshapes to [2, n, 2] but not to [n * 4]
// spelled as another symbol.
Tensor reshape(Tensor x, std::initializer_list<DimArg> shape);
Tensor reshape(Tensor x, const std::vector<DimArg>& shape);
Tensor squeeze(Tensor x, int axis);    // removes `axis`, which must be a dim of 1
Tensor unsqueeze(Tensor x, int axis);  // inserts a dim of 1 at `axis`, in [-rank - 1, rank]
// NumPy broadcasting to `shape`: dims of 1 stretch, new dims come on the
// left; -1 keeps the operand's dim there.
Tensor expand(Tensor x, std::initializer_list<DimArg> shape);
Tensor expand(Tensor x, const std::vector<DimArg>& shape);
Tensor broadcast_to(Tensor x, std::initializer_list<DimArg> shape);  // same as expand
Tensor broadcast_to(Tensor x, const std::vector<DimArg>& shape);
// Dim i of the result is dim perm[i] of x.
Tensor permute(Tensor x, const std::vector<int>& perm);
Tensor transpose(Tensor x, int a, int b);  // swaps two axes
// x[start:stop:step] along `axis`, which must have a constant size. Python's
// rules: a negative start or stop counts from the end, both clamp to the dim
// (so a large stop reads to the end); step >= 1; an empty slice is an error.
Tensor slice(Tensor x, int axis, int64_t start, int64_t stop, int64_t step = 1);
// Joins tensors of one dtype and rank along `axis`: every other dim must be
// equal, and the sizes along `axis` constants.
Tensor concat(const std::vector<Tensor>& xs, int axis);
// index_select: the result's shape is table.shape[:axis] ++ indices.shape ++
// table.shape[axis + 1:]; indices are i32 or i64. An index in [-V, -1]
// counts from the end (V = table.shape[axis]). An index outside [-V, V)
// never reads out of bounds: its elements are a fill value instead, as
// JAX's gather mode 'fill' does: NaN for floats, the lowest value for
// signed integers (INT32_MIN, INT64_MIN), true for bool.
Tensor gather(Tensor table, Tensor indices, int axis = 0);
// An embedding lookup, gather(table, ids, 0): rows of a [V, D] table.
Tensor embedding(Tensor table, Tensor ids);
// Each element's index along `axis`, in `dtype` (not bool). A causal mask:
// where(iota({n, 1}, 0) >= iota({1, n}, 1), s, constant(-INFINITY)).
Tensor iota(std::initializer_list<DimArg> shape, int axis, DType dtype = DType::i64);
Tensor iota(const std::vector<DimArg>& shape, int axis, DType dtype = DType::i64);

// Composites, built from the ops above (computed in f32 for f16/bf16 input and
// cast back, as PyTorch does).
Tensor softmax(Tensor x, int axis = -1);
// x - max - log(sum(exp(x - max))) over `axis`: stable for large |x|.
Tensor log_softmax(Tensor x, int axis = -1);
Tensor layernorm(Tensor x, Tensor weight, Tensor bias, double eps = 1e-5);
Tensor rmsnorm(Tensor x, Tensor weight, double eps = 1e-6);

// What a graph returns.
class Outputs {
 public:
  Outputs(std::initializer_list<Tensor> tensors) : tensors_(tensors) {}
  explicit Outputs(std::vector<Tensor> tensors) : tensors_(std::move(tensors)) {}
  // Names the outputs in order; unnamed outputs are out0, out1, ...
  Outputs& named(std::initializer_list<std::string> names);
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<Tensor> tensors_;
  std::vector<std::string> names_;
};

template <typename... Ts>
Outputs outputs(Ts... ts) {
  return Outputs({ts...});
}

using GraphFunction = Outputs (*)();

struct RegisteredGraph {
  std::string name;
  GraphFunction function;
  std::string source_file;
};

// Static registration, as HALIDE_REGISTER_GENERATOR does it.
class GraphRegistration {
 public:
  GraphRegistration(const char* name, GraphFunction function, const char* source_file);
};

// Every graph registered in this program, sorted by name.
std::vector<RegisteredGraph> registered_graphs();

// Runs one graph function under a fresh tracer and returns its IR. Throws
// TraceError naming the graph and the op on a shape or dtype error.
ir::Graph trace(const std::string& name, GraphFunction function);

}  // namespace kiln

#define KILN_GRAPH(NAME)                                                 \
  static ::kiln::Outputs kiln_graph_fn_##NAME();                         \
  static const ::kiln::GraphRegistration kiln_graph_registration_##NAME( \
      #NAME, &kiln_graph_fn_##NAME, __FILE__);                           \
  static ::kiln::Outputs kiln_graph_fn_##NAME()
