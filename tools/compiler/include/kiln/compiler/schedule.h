// The fusion scheduler: partitions a graph's computed nodes into fused
// groups, each of which becomes one kernel (docs/codegen.md).
//
// A group iterates a domain O ++ [C]: rows over the outer dims O, and the
// inner (last) dim C within a row. Every node of a group is either a
// row-vector (shape O ++ [C]: one value per (row, c)) or a row-scalar (shape
// O ++ [1] or O: one value per row). Last-axis reductions turn row-vectors
// into row-scalars; the number of reductions a node sits behind is its phase.
// Groups are numbered so that running them in index order is valid: every
// edge between groups points from a lower index to a higher one (edges from
// inlinable nodes are recomputed, not read, so they do not count).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/compiler/ir.h"

namespace kiln::compiler {

enum class NodeRole : uint8_t { none = 0, row_vector = 1, row_scalar = 2 };

struct FusedGroup {
  ir::Shape outer;             // O
  ir::Dim inner;               // C
  std::vector<int32_t> nodes;  // computed nodes of the group, in topological order
  // >= 0: a copy group writing graph output(s) that are this input or
  // constant node (nodes is then empty).
  int32_t copy_of = -1;
  // >= 0: a standalone reduction group holding only this node, a reduction
  // that is not a row reduction (is_row_reduction): over other or several
  // axes, reduce_prod or argmax. Its operand is read from a buffer.
  int32_t reduction_of = -1;
  // >= 0: a matmul group: this matmul node, then its epilogue, each node
  // reading the one before (is_matmul_epilogue): an optional scale by a
  // constant, bias add and relu, in that order. Its operands, bias included,
  // are read from buffers; the last node is written.
  int32_t matmul_of = -1;
  // >= 0: a standalone index group holding only this node, a permute,
  // slice, concat, gather or iota (is_index_op): each element of its result
  // loaded from its operands at a computed offset, each operand read from a
  // buffer or computed inline (index_operand_inline).
  int32_t index_of = -1;
  bool has_reduction = false;
  // Loops per row: 1 + the highest phase of a row-vector node or reduction;
  // 0 when the group holds row-scalars only.
  int32_t num_loops = 0;

  ir::Shape domain() const;  // O ++ [C]
};

struct Schedule {
  std::vector<FusedGroup> groups;
  // Per node id:
  std::vector<int32_t> group_of;  // -1 for leaves (input, constant) and dead nodes
  std::vector<NodeRole> role;     // none for leaves and dead nodes
  std::vector<int32_t> phase;     // reductions (within the group) the node sits behind
  std::vector<uint8_t>
      materialized;  // computed node written to a buffer (graph output or read by a later group)
  std::vector<uint8_t> live;  // reachable from an output
  // A cheap pointwise node computed from inputs and constants only (at most
  // kMaxInlineOps ops deep). A reader in another group recomputes it from
  // those leaves instead of reading a buffer, so a broadcast operand such as
  // cast(w) of shape [C] does not split a group over [n, C].
  std::vector<uint8_t> inlinable;
  std::vector<int32_t> inline_ops;  // ops in an inlinable node's cone
};

inline constexpr int32_t kMaxInlineOps = 8;

// A reduction the fused row groups handle: sum, mean, max or min over the
// last axis only, but not of a rank-1 input of kSplitRowsFrom elements or
// more (or of symbolic length). Other reductions get a group of their own.
inline constexpr int64_t kSplitRowsFrom = 8192;

// Whether the standalone reduction `reduction` computes its operand inline
// rather than reading it from a buffer: an inlinable operand whose cone reads
// only constants and nodes of the operand's own shape (no broadcast), so one
// element index serves every read (cast(x) of an input x, say).
bool reduction_operand_inline(const ir::Graph& g, const std::vector<uint8_t>& inlinable,
                              int32_t reduction);
bool is_row_reduction(const ir::Graph& g, const ir::Node& n);

// What an epilogue node does to the matmul result (FusedGroup::matmul_of).
enum class EpilogueStep : uint8_t { none, scale, bias, relu };
// The step `n` would be when it reads `tail`, the last node of a matmul
// group: mul or div by a constant (scale), add of a buffer of shape [N]
// padded with ones on the left and of the result's dtype, f32 only (bias),
// or relu. `none` when n is none of these.
EpilogueStep matmul_epilogue_step(const ir::Graph& g, const ir::Node& n, int32_t tail);
// The ops lowered to an index group (FusedGroup::index_of): permute, slice,
// concat, gather, iota. reshape is an alias and expand a pointwise identity
// (docs/codegen.md).
bool is_index_op(ir::Op op);

// A reshape reads its root's buffer in place: the root is the first node up
// its chain of reshapes that is not one (any other node is its own root). A
// reshape has no group; a computed root is materialized, and its readers
// run in later groups. A reshape that is an output gets a copy group.
int32_t view_root(const ir::Graph& g, int32_t id);

// Whether an index group computes its operand `op` inline at each element
// rather than reading it from a buffer: the rule of
// reduction_operand_inline, for one operand.
bool index_operand_inline(const ir::Graph& g, const std::vector<uint8_t>& inlinable, int32_t op);

// A permute that swaps the last two axes and keeps the others in place,
// which a matmul can take as its operand's transpose flag.
bool is_last_two_axes_transpose(const ir::Node& n);

// The node whose buffer a matmul reads for its operand `op`: op itself, or,
// when op transposes the last two axes (is_last_two_axes_transpose), op's
// operand, which the call reads transposed (`transposed` set) with no copy.
int32_t matmul_source(const ir::Graph& g, int32_t op, bool* transposed);

// Schedules a topologically ordered graph (canonical form recommended).
Schedule schedule_graph(const ir::Graph& g);

// One line per group: "g0 rows O=[n] C=4096 loops=3 nodes=[2,3,4] out=[4]".
std::string schedule_to_string(const ir::Graph& g, const Schedule& s);

}  // namespace kiln::compiler
