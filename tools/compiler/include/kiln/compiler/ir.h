// The traced graph: an SSA list of nodes whose shapes are expressions of named
// symbols. Everything after tracing (hashing, the interpreter, scheduling,
// codegen, packing) reads this form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/dtype.h"

namespace kiln::ir {

// A dimension: the constant `value` when sym < 0, else Graph::symbols[sym].
struct Dim {
  int64_t value = 0;
  int32_t sym = -1;

  static Dim constant(int64_t v) { return Dim{v, -1}; }
  static Dim symbol(int32_t s) { return Dim{0, s}; }
  bool is_constant() const { return sym < 0; }
  bool is_one() const { return sym < 0 && value == 1; }
  friend bool operator==(const Dim&, const Dim&) = default;
};

using Shape = std::vector<Dim>;

struct SymbolDecl {
  std::string name;
  int64_t min = 1;
  int64_t max = (int64_t{1} << 31) - 1;
  std::vector<int64_t> hot;
  int64_t divisible_by = 1;
  friend bool operator==(const SymbolDecl&, const SymbolDecl&) = default;
};

// Keep in sync with op_name()/op_from_name(): the package stores ops by name.
enum class Op : uint8_t {
  // leaves
  input,
  constant,  // a scalar (shape []) of `scalar`, in `dtype`
  // unary pointwise
  neg,
  abs,
  exp,
  log,
  sin,
  cos,
  tanh,
  sigmoid,
  relu,
  gelu,  // exact (erf) form, as torch.nn.functional.gelu's default
  sqrt,
  rsqrt,
  square,
  logical_not,
  cast,  // to `dtype`
  // binary pointwise (NumPy broadcasting)
  add,
  sub,
  mul,
  div,
  maximum,
  minimum,
  pow,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  // ternary pointwise
  where,  // where(cond, a, b)
  // reductions over `axis` (normalized to >= 0), or over `axes` when that
  // holds two or more axes, with `keepdim`
  reduce_sum,
  reduce_mean,
  reduce_max,
  reduce_min,
  reduce_prod,
  argmax,  // over one `axis`; i64 index of the first maximum (a NaN counts as the maximum)
  // a [..., M, K] times b [..., K, N] -> [..., M, N], batch dims broadcast
  // (matmul_shape); f32, f16 or bf16, both the same, accumulated in f32 (or
  // wider) and rounded once to the dtype
  matmul,
  // Shape ops: elements moved or indexed rather than computed (docs/codegen.md
  // says how each lowers). Every one keeps its operand's dtype but gather's
  // (the table's) and iota's (`dtype`).
  reshape,  // the operand's elements, in row-major order, in `shape`
  expand,   // NumPy broadcast of the operand to `shape`
  permute,  // dim i of the result is dim axes[i] of the operand
  slice,    // along `axis`: params = {start, stop, step}, normalized (0 <= start < stop <= dim)
  concat,   // its inputs (one or more) along `axis`
  gather,   // gather(table, indices) along `axis`: table[..., indices[...], ...]
  iota,     // no inputs: each element's index along `axis`, in `dtype`
};

std::string_view op_name(Op op);
std::optional<Op> op_from_name(std::string_view name);
int op_arity(Op op);  // number of node inputs; 0 for leaves and iota, -1 for concat (one or more)
bool is_unary(Op op);
bool is_binary(Op op);
bool is_comparison(Op op);
bool is_pointwise(Op op);  // unary, binary, where, cast
bool is_reduction(Op op);
bool is_shape_op(Op op);  // reshape .. iota

// The value a gather yields for an index outside [-V, V) (V the table's
// size along the axis), as JAX's mode 'fill' does: NaN for floats, the
// lowest value for signed integers, true for bool.
double gather_fill_value(DType dtype);

// The result shape of matmul(a, b), or nullopt when a or b has rank < 2, the
// contracted dims differ or the batch dims do not broadcast.
std::optional<Shape> matmul_shape(const Shape& a, const Shape& b);

// How a matmul operand's batch dims (all but its last two, right-aligned)
// stand to those of `result`, a matmul_shape: all 1 (`none`), all of the
// result's (`full`), or otherwise (`partial`), which a GEMM's single batch
// stride cannot express.
enum class MatmulBatch : uint8_t { none, full, partial };
MatmulBatch matmul_batch(const Shape& operand, const Shape& result);

struct Node {
  Op op = Op::input;
  DType dtype = DType::f32;
  Shape shape;
  std::vector<int32_t> inputs;  // node ids, all smaller than this node's id
  double scalar = 0;            // Op::constant
  int32_t axis = 0;             // reductions: the reduced axis (the first of `axes` if set)
  // Reductions over several axes: sorted, distinct, normalized, two or more.
  // Empty for a single-axis reduction (which `axis` names).
  std::vector<int32_t> axes;
  bool keepdim = false;  // reductions
  // Integer parameters of a shape op (Op::slice: start, stop, step); empty
  // for every other op.
  std::vector<int64_t> params;
  std::string name;          // Op::input: the input's name
  int32_t input_index = -1;  // Op::input: position among Graph::inputs
  friend bool operator==(const Node&, const Node&) = default;
};

struct Graph {
  std::string name;
  std::vector<SymbolDecl> symbols;
  std::vector<Node> nodes;                // topologically ordered: inputs precede users
  std::vector<int32_t> inputs;            // node ids of Op::input nodes, in declaration order
  std::vector<int32_t> outputs;           // node ids, in the order the graph returns them
  std::vector<std::string> output_names;  // "out0", "out1", ... unless named
  // The targets kiln::graph_targets() named in the declaration ("cpu:x86-64",
  // "cuda:sm_90"); empty: every target of the package. A build option, not
  // structure: neither hashed nor stored in the package's IR.
  std::vector<std::string> declared_targets;

  const Node& node(int32_t id) const { return nodes.at(static_cast<size_t>(id)); }
  // Field by field (a constant's scalar exactly): what a round trip through
  // the package must keep.
  friend bool operator==(const Graph&, const Graph&) = default;
};

// The axes a reduction reduces, sorted: `axes`, or {axis} when it is empty.
std::vector<int32_t> reduced_axes(const Node& n);

// Why node `id` of `g`, a shape op, is inconsistent with its operands (a
// bad permutation, a slice out of range, concat dims that differ, a shape
// that does not follow from its operands' ...), as "expected X, got Y"; ""
// when it is consistent, or when the node is not a shape op. The tracer
// never builds such a node; a package read back may hold one, and codegen
// indexes by these fields.
std::string shape_op_error(const Graph& g, int32_t id);
// The same for a matmul node: operand dtypes (f32, f16 or bf16, both the
// node's), ranks, the contracted dims and the result's shape
// (matmul_shape), and batch dims that broadcast all or not at all, which
// the lowering's single batch stride needs; "" when consistent or not a
// matmul.
std::string matmul_error(const Graph& g, int32_t id);

// Product of all dims as a constant when every dim is constant.
std::optional<int64_t> static_numel(const Shape& shape);
std::string shape_to_string(const Graph& g, const Shape& shape);  // "[n, 4096]"
// A readable dump, one line per node ("%4 = add(%2, %3) : f32[n, 7]"), after
// the symbols with their ranges and before the outputs; for test failures.
std::string graph_to_string(const Graph& g);

// Returns a copy in canonical form: dead nodes dropped, nodes in the order of a
// depth-first walk from the outputs (operands in order), inputs first in
// declaration order. Two graphs that differ only in trace order of
// independent nodes have the same canonical form.
Graph canonicalize(const Graph& g);

// Concrete values for every symbol, by symbol index.
using SymbolValues = std::vector<int64_t>;
int64_t eval_dim(const Dim& d, const SymbolValues& values);
std::vector<int64_t> eval_shape(const Shape& s, const SymbolValues& values);

}  // namespace kiln::ir
