// The fusion scheduler (see schedule.h and docs/codegen.md).
#include "kiln/compiler/schedule.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace kiln::compiler {

namespace {

using ir::Dim;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

bool is_leaf(const Node& n) { return n.op == Op::input || n.op == Op::constant; }

Shape concat(const Shape& a, const Dim& d) {
  Shape s = a;
  s.push_back(d);
  return s;
}

// `s` right-aligned to `rank` dims, padded with ones on the left.
Shape pad_left(const Shape& s, size_t rank) {
  if (s.size() >= rank) return s;
  Shape out(rank - s.size(), Dim::constant(1));
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

class Scheduler {
 public:
  explicit Scheduler(const Graph& g) : g_(g) {
    const size_t n = g.nodes.size();
    s_.group_of.assign(n, -1);
    s_.role.assign(n, NodeRole::none);
    s_.phase.assign(n, 0);
    s_.materialized.assign(n, 0);
    s_.live.assign(n, 0);
    s_.inlinable.assign(n, 0);
    s_.inline_ops.assign(n, 0);
    uses_.assign(n, 0);
    for (const Node& node : g.nodes) {
      for (int32_t in : node.inputs) ++uses_.at(static_cast<size_t>(in));
    }
    for (int32_t o : g.outputs) ++uses_.at(static_cast<size_t>(o));
  }

  Schedule run() {
    mark_live();
    mark_inlinable();
    for (int32_t id = 0; id < static_cast<int32_t>(g_.nodes.size()); ++id) {
      const Node& n = g_.node(id);
      if (is_leaf(n) || !s_.live[id] || n.op == Op::reshape) continue;
      place(id);
    }
    add_copy_groups();
    mark_materialized();
    drop_dead_groups();
    finish_groups();
    return std::move(s_);
  }

 private:
  void mark_live() {
    for (int32_t o : g_.outputs) s_.live.at(o) = 1;
    for (int32_t id = static_cast<int32_t>(g_.nodes.size()) - 1; id >= 0; --id) {
      if (!s_.live[id]) continue;
      for (int32_t in : g_.node(id).inputs) s_.live.at(in) = 1;
    }
  }

  void mark_inlinable() {
    for (int32_t id = 0; id < static_cast<int32_t>(g_.nodes.size()); ++id) {
      const Node& n = g_.node(id);
      if (is_leaf(n) || !ir::is_pointwise(n.op)) continue;
      int32_t ops = 1;
      bool ok = true;
      for (int32_t op : n.inputs) {
        // An iota is read from its buffer (a small index group's) wherever
        // the cone is recomputed: a causal mask computed from two iotas
        // stays inside the row kernel that reads it rather than becoming an
        // n x n buffer of its own.
        if (is_leaf(g_.node(op)) || is_input_view(op) || g_.node(op).op == Op::iota) continue;
        if (!s_.inlinable[op]) {
          ok = false;
          break;
        }
        ops += s_.inline_ops[op];
      }
      if (ok && ops <= kMaxInlineOps) {
        s_.inlinable[id] = 1;
        s_.inline_ops[id] = ops;
      }
    }
  }

  // The highest group whose buffer the inline cone of `op` reads (its
  // iotas'), or -1: a reader that recomputes op runs after it.
  int32_t cone_group(int32_t op) const {
    const Node& m = g_.node(op);
    if (m.op == Op::iota) return s_.group_of[op];
    if (!s_.inlinable[op]) return -1;
    int32_t g = -1;
    for (int32_t c : m.inputs) g = std::max(g, cone_group(c));
    return g;
  }

  // Materializes the iotas that the inline cone of `op` reads, for a reader
  // in group `gi`.
  void materialize_cone_reads(int32_t op, int32_t gi) {
    const Node& m = g_.node(op);
    if (m.op == Op::iota) {
      if (s_.group_of[op] >= gi) {
        throw std::logic_error("kiln scheduler: an iota is read before its group runs");
      }
      s_.materialized[op] = 1;
      return;
    }
    if (!s_.inlinable[op]) return;
    for (int32_t c : m.inputs) materialize_cone_reads(c, gi);
  }

  // Whether `id` extends matmul group `gi` as its next epilogue step: it
  // reads the group's last node, which nothing else reads (a graph output
  // counts as a reader), and its steps stay in order.
  bool fits_epilogue(int32_t id, int32_t gi) const {
    const Node& n = g_.node(id);
    const FusedGroup& G = s_.groups[gi];
    const int32_t tail = G.nodes.back();
    if (uses_[static_cast<size_t>(tail)] != 1) return false;
    const EpilogueStep step = matmul_epilogue_step(g_, n, tail);
    if (step == EpilogueStep::none) return false;
    EpilogueStep last = EpilogueStep::none;
    for (size_t i = 1; i < G.nodes.size(); ++i) {
      last = matmul_epilogue_step(g_, g_.node(G.nodes[i]), G.nodes[i - 1]);
    }
    if (static_cast<int>(step) <= static_cast<int>(last)) return false;
    if (step == EpilogueStep::bias) {
      // The bias is read from a buffer written before this group runs.
      const int32_t bias = n.inputs[0] == tail ? n.inputs[1] : n.inputs[0];
      if (s_.group_of[static_cast<size_t>(bias)] >= gi) return false;
    }
    return true;
  }

  // A reshape of a graph input: its buffer exists before any group runs,
  // so readers treat it as they treat the input.
  bool is_input_view(int32_t op) const {
    return g_.node(op).op == Op::reshape && g_.node(view_root(g_, op)).op == Op::input;
  }

  // The first group `id` may run in: after the group of every computed root
  // it reads through a reshape (that buffer is complete only then).
  int32_t after_views(int32_t id) const {
    int32_t after = 0;
    for (int32_t op : g_.node(id).inputs) {
      if (g_.node(op).op != Op::reshape) continue;
      const int32_t root = view_root(g_, op);
      if (!is_leaf(g_.node(root))) after = std::max(after, s_.group_of[root] + 1);
    }
    return after;
  }

  // The role `id` would take in group `gi`, or none when it does not fit.
  NodeRole fit(int32_t id, int32_t gi) const {
    const Node& n = g_.node(id);
    const FusedGroup& G = s_.groups[gi];
    if (G.reduction_of >= 0) return G.reduction_of == id ? NodeRole::row_scalar : NodeRole::none;
    if (G.matmul_of >= 0) {
      if (G.nodes.empty()) return G.matmul_of == id ? NodeRole::row_vector : NodeRole::none;
      return fits_epilogue(id, gi) ? NodeRole::row_vector : NodeRole::none;
    }
    if (n.op == Op::matmul) return NodeRole::none;
    if (G.index_of >= 0) return G.index_of == id ? NodeRole::row_vector : NodeRole::none;
    if (is_index_op(n.op)) return NodeRole::none;
    if (ir::is_reduction(n.op) && !is_row_reduction(g_, n)) return NodeRole::none;
    const Shape dom = concat(G.outer, G.inner);
    const Shape row_scalar = concat(G.outer, Dim::constant(1));
    if (ir::is_reduction(n.op)) {
      const Node& in = g_.node(n.inputs.at(0));
      if (in.shape.empty() || n.axis != static_cast<int32_t>(in.shape.size()) - 1)
        return NodeRole::none;
      if (in.shape != dom) return NodeRole::none;
      if (s_.group_of[n.inputs[0]] == gi && s_.role[n.inputs[0]] != NodeRole::row_vector)
        return NodeRole::none;
      return NodeRole::row_scalar;
    }
    NodeRole role;
    if (n.shape == dom) {
      role = NodeRole::row_vector;
    } else if (n.shape == row_scalar || n.shape == G.outer) {
      role = NodeRole::row_scalar;
    } else {
      return NodeRole::none;
    }
    for (int32_t op : n.inputs) {
      if (s_.group_of[op] != gi) continue;  // external: read through broadcast offsets
      const Node& m = g_.node(op);
      if (s_.role[op] == NodeRole::row_vector) {
        if (role != NodeRole::row_vector || m.shape != n.shape) return NodeRole::none;
      } else {
        // A row-scalar operand must keep its row: right-aligned against the
        // reader's shape it is O ++ [1] (or O for a reader of shape O).
        if (m.shape.size() > n.shape.size()) return NodeRole::none;
        const bool reader_has_inner = n.shape.size() == G.outer.size() + 1;
        if (reader_has_inner) {
          if (pad_left(m.shape, G.outer.size() + 1) != row_scalar) return NodeRole::none;
        } else {
          if (pad_left(m.shape, G.outer.size()) != G.outer) return NodeRole::none;
        }
      }
    }
    return role;
  }

  void join(int32_t id, int32_t gi, NodeRole role) {
    const Node& n = g_.node(id);
    FusedGroup& G = s_.groups[gi];
    s_.group_of[id] = gi;
    s_.role[id] = role;
    int32_t phase = 0;
    if (ir::is_reduction(n.op)) {
      const int32_t in = n.inputs[0];
      if (s_.group_of[in] == gi) phase = s_.phase[in];
      G.has_reduction = true;
    } else {
      for (int32_t op : n.inputs) {
        if (s_.group_of[op] != gi) continue;
        const int32_t level = s_.phase[op] + (ir::is_reduction(g_.node(op).op) ? 1 : 0);
        phase = std::max(phase, level);
      }
    }
    s_.phase[id] = phase;
    G.nodes.push_back(id);
  }

  void new_group(int32_t id) {
    const Node& n = g_.node(id);
    FusedGroup G;
    const Shape* dom = &n.shape;
    if (ir::is_reduction(n.op)) {
      const Node& in = g_.node(n.inputs.at(0));
      dom = &in.shape;
      if (!is_row_reduction(g_, n)) G.reduction_of = id;
    }
    if (n.op == Op::matmul) G.matmul_of = id;
    if (is_index_op(n.op)) G.index_of = id;
    if (dom->empty()) {
      G.inner = Dim::constant(1);
    } else {
      G.outer.assign(dom->begin(), dom->end() - 1);
      G.inner = dom->back();
    }
    s_.groups.push_back(std::move(G));
    const int32_t gi = static_cast<int32_t>(s_.groups.size()) - 1;
    const NodeRole role = fit(id, gi);
    if (role == NodeRole::none) {
      throw std::logic_error("kiln scheduler: node " + std::to_string(id) +
                             " does not fit its own group");
    }
    join(id, gi, role);
  }

  void place(int32_t id) {
    const Node& n = g_.node(id);
    // The highest group of any producer, then of the producers that must be
    // read from a buffer (inlinable ones can be recomputed), then the newest
    // group: joining any of them keeps every buffer edge pointing forward.
    int32_t highest = -1;
    int32_t highest_read = -1;
    for (int32_t op : n.inputs) {
      highest = std::max(highest, s_.group_of[op]);
      highest_read = std::max(highest_read, s_.inlinable[op] ? cone_group(op) : s_.group_of[op]);
    }
    const int32_t last = static_cast<int32_t>(s_.groups.size()) - 1;
    const int32_t after = after_views(id);
    std::vector<int32_t> candidates;
    for (int32_t gi : {highest, highest_read, last}) {
      if (gi >= 0 && gi >= highest_read && gi >= after &&
          std::find(candidates.begin(), candidates.end(), gi) == candidates.end()) {
        candidates.push_back(gi);
      }
    }
    for (int32_t gi : candidates) {
      const NodeRole role = fit(id, gi);
      if (role != NodeRole::none) {
        join(id, gi, role);
        return;
      }
    }
    new_group(id);
  }

  void add_copy_groups() {
    std::vector<int32_t> done;
    for (int32_t o : g_.outputs) {
      const Node& n = g_.node(o);
      if (!is_leaf(n) && n.op != Op::reshape) continue;
      if (std::find(done.begin(), done.end(), o) != done.end()) continue;
      done.push_back(o);
      FusedGroup G;
      if (n.shape.empty()) {
        G.inner = Dim::constant(1);
      } else {
        G.outer.assign(n.shape.begin(), n.shape.end() - 1);
        G.inner = n.shape.back();
      }
      G.copy_of = o;
      s_.groups.push_back(std::move(G));
    }
  }

  void mark_materialized() {
    for (int32_t o : g_.outputs) {
      if (!is_leaf(g_.node(o)) && g_.node(o).op != Op::reshape) s_.materialized.at(o) = 1;
    }
    for (int32_t id = 0; id < static_cast<int32_t>(g_.nodes.size()); ++id) {
      if (!s_.live[id]) continue;
      if (g_.node(id).op == Op::reshape) {
        const int32_t root = view_root(g_, id);
        if (!is_leaf(g_.node(root))) s_.materialized.at(root) = 1;
        continue;
      }
      if (s_.group_of[id] < 0) continue;
      // Every reader of a reshape runs after its root's group (after_views).
      for (int32_t op : g_.node(id).inputs) {
        if (g_.node(op).op != Op::reshape) continue;
        const int32_t root = view_root(g_, op);
        if (!is_leaf(g_.node(root)) && s_.group_of[root] >= s_.group_of[id]) {
          throw std::logic_error("kiln scheduler: a reshape is read before its buffer is written");
        }
      }
    }
    for (int32_t id = 0; id < static_cast<int32_t>(g_.nodes.size()); ++id) {
      if (s_.group_of[id] < 0) continue;
      const FusedGroup& G = s_.groups[s_.group_of[id]];
      // A standalone reduction reads its operand from a buffer unless it can
      // compute it inline at each element; an index group decides so per
      // operand; a matmul group reads every operand from a buffer.
      const bool reads_buffer =
          G.matmul_of >= 0 ||
          (G.reduction_of == id && !reduction_operand_inline(g_, s_.inlinable, id));
      for (int32_t op : g_.node(id).inputs) {
        // A matmul reads a transposed operand's source instead (matmul_source).
        bool transposed = false;
        if (G.matmul_of == id) op = matmul_source(g_, op, &transposed);
        const bool buffer =
            reads_buffer || (G.index_of == id && !index_operand_inline(g_, s_.inlinable, op));
        if (s_.inlinable[op] && !buffer && s_.group_of[op] != s_.group_of[id]) {
          materialize_cone_reads(op, s_.group_of[id]);
          continue;
        }
        if (s_.group_of[op] < 0 || s_.group_of[op] == s_.group_of[id]) continue;
        if (s_.group_of[op] > s_.group_of[id]) {
          throw std::logic_error("kiln scheduler: backward edge between groups");
        }
        s_.materialized[op] = 1;
      }
    }
  }

  // A group none of whose nodes is written anywhere only held inlinable
  // nodes that every reader recomputes: drop it and renumber.
  void drop_dead_groups() {
    std::vector<int32_t> remap(s_.groups.size(), -1);
    std::vector<FusedGroup> kept;
    for (size_t gi = 0; gi < s_.groups.size(); ++gi) {
      FusedGroup& G = s_.groups[gi];
      const bool alive =
          G.copy_of >= 0 || std::any_of(G.nodes.begin(), G.nodes.end(),
                                        [&](int32_t id) { return s_.materialized[id] != 0; });
      if (!alive) {
        for (int32_t id : G.nodes) {
          s_.group_of[id] = -1;
          s_.role[id] = NodeRole::none;
          s_.phase[id] = 0;
        }
        continue;
      }
      remap[gi] = static_cast<int32_t>(kept.size());
      kept.push_back(std::move(G));
    }
    s_.groups = std::move(kept);
    for (auto& gi : s_.group_of) {
      if (gi >= 0) gi = remap[static_cast<size_t>(gi)];
    }
  }

  void finish_groups() {
    for (FusedGroup& G : s_.groups) {
      int32_t loops = 0;
      for (int32_t id : G.nodes) {
        if (s_.role[id] == NodeRole::row_vector || ir::is_reduction(g_.node(id).op)) {
          loops = std::max(loops, s_.phase[id] + 1);
        }
      }
      G.num_loops = loops;
    }
  }

  const Graph& g_;
  Schedule s_;
  std::vector<int32_t> uses_;  // per node: readers, a graph output counting as one
};

}  // namespace

namespace {

bool same_shape_cone(const Graph& g, const std::vector<uint8_t>& inlinable, int32_t op,
                     const Shape& shape) {
  const Node& m = g.node(op);
  if (m.op == Op::constant) return true;
  if (m.shape != shape) return false;
  // A reshape of an input reads the input's buffer at the same flat index.
  if (m.op == Op::input || (m.op == Op::reshape && g.node(view_root(g, op)).op == Op::input))
    return true;
  if (!inlinable[static_cast<size_t>(op)]) return false;
  return std::all_of(m.inputs.begin(), m.inputs.end(),
                     [&](int32_t c) { return same_shape_cone(g, inlinable, c, shape); });
}

}  // namespace

bool reduction_operand_inline(const ir::Graph& g, const std::vector<uint8_t>& inlinable,
                              int32_t reduction) {
  const int32_t op = g.node(reduction).inputs.at(0);
  if (is_leaf(g.node(op)) || !inlinable[static_cast<size_t>(op)]) return false;
  return same_shape_cone(g, inlinable, op, g.node(op).shape);
}

bool index_operand_inline(const ir::Graph& g, const std::vector<uint8_t>& inlinable, int32_t op) {
  const Node& m = g.node(op);
  if (is_leaf(m) || m.op == Op::reshape || !inlinable[static_cast<size_t>(op)]) return false;
  return same_shape_cone(g, inlinable, op, m.shape);
}

bool is_index_op(ir::Op op) {
  return op == Op::permute || op == Op::slice || op == Op::concat || op == Op::gather ||
         op == Op::iota;
}

int32_t view_root(const ir::Graph& g, int32_t id) {
  while (g.node(id).op == Op::reshape) id = g.node(id).inputs.at(0);
  return id;
}

bool is_last_two_axes_transpose(const ir::Node& n) {
  const size_t r = n.axes.size();
  if (n.op != Op::permute || r < 2) return false;
  for (size_t i = 0; i + 2 < r; ++i) {
    if (n.axes[i] != static_cast<int32_t>(i)) return false;
  }
  return n.axes[r - 2] == static_cast<int32_t>(r - 1) &&
         n.axes[r - 1] == static_cast<int32_t>(r - 2);
}

int32_t matmul_source(const ir::Graph& g, int32_t op, bool* transposed) {
  const Node& n = g.node(op);
  *transposed = is_last_two_axes_transpose(n);
  return *transposed ? n.inputs.at(0) : op;
}

bool is_row_reduction(const ir::Graph& g, const ir::Node& n) {
  if (n.op != Op::reduce_sum && n.op != Op::reduce_mean && n.op != Op::reduce_max &&
      n.op != Op::reduce_min)
    return false;
  const Node& in = g.node(n.inputs.at(0));
  if (!n.axes.empty() || in.shape.empty() || n.axis != static_cast<int32_t>(in.shape.size()) - 1)
    return false;
  // A whole rank-1 tensor, long or of unknown length: standalone, so CUDA
  // can split it over many blocks (a fused row group gives it one).
  const Dim& c = in.shape.back();
  const bool short_row = c.is_constant() && c.value < kSplitRowsFrom;
  return in.shape.size() > 1 || short_row;
}

EpilogueStep matmul_epilogue_step(const ir::Graph& g, const ir::Node& n, int32_t tail) {
  const Node& t = g.node(tail);
  if (n.dtype != t.dtype || n.shape != t.shape) return EpilogueStep::none;
  if (n.op == Op::relu && n.inputs[0] == tail) return EpilogueStep::relu;
  if (n.op != Op::mul && n.op != Op::div && n.op != Op::add) return EpilogueStep::none;
  if (n.inputs[0] != tail && n.inputs[1] != tail) return EpilogueStep::none;
  if (n.inputs[0] == tail && n.inputs[1] == tail) return EpilogueStep::none;
  const int32_t other = n.inputs[0] == tail ? n.inputs[1] : n.inputs[0];
  const Node& o = g.node(other);
  if (n.op == Op::mul || n.op == Op::div) {
    // x / c is x * (1 / c) only up to rounding, as cuBLASLt's alpha computes it.
    const bool scalar = o.op == Op::constant && (n.op == Op::mul || n.inputs[1] == other);
    return scalar && std::isfinite(o.scalar) && o.scalar != 0 ? EpilogueStep::scale
                                                              : EpilogueStep::none;
  }
  // A 16-bit sum is rounded before the bias is added (the graph's
  // semantics); an epilogue adds it to the f32 sum and rounds once, which
  // differs by up to an ulp of the product: far outside the tolerance where
  // the two cancel. A kernel reading the rounded product adds it instead.
  if (n.dtype != DType::f32) return EpilogueStep::none;
  if (o.op == Op::constant || o.dtype != n.dtype || o.shape.empty()) return EpilogueStep::none;
  if (!(o.shape.back() == n.shape.back())) return EpilogueStep::none;
  for (size_t i = 0; i + 1 < o.shape.size(); ++i) {
    if (!o.shape[i].is_one()) return EpilogueStep::none;
  }
  return EpilogueStep::bias;
}

ir::Shape FusedGroup::domain() const { return concat(outer, inner); }

Schedule schedule_graph(const ir::Graph& g) { return Scheduler(g).run(); }

std::string schedule_to_string(const ir::Graph& g, const Schedule& s) {
  std::ostringstream os;
  for (size_t gi = 0; gi < s.groups.size(); ++gi) {
    const FusedGroup& G = s.groups[gi];
    os << "g" << gi;
    if (G.copy_of >= 0) {
      os << " copy of " << G.copy_of << " " << ir::shape_to_string(g, G.domain()) << "\n";
      continue;
    }
    if (G.index_of >= 0) {
      const ir::Node& n = g.node(G.index_of);
      os << " index " << G.index_of << ":" << ir::op_name(n.op) << " "
         << ir::shape_to_string(g, n.shape) << " <-";
      for (int32_t in : n.inputs) os << " " << in << ir::shape_to_string(g, g.node(in).shape);
      os << "\n";
      continue;
    }
    if (G.reduction_of >= 0) {
      const ir::Node& n = g.node(G.reduction_of);
      os << " reduce " << G.reduction_of << ":" << ir::op_name(n.op) << " of "
         << ir::shape_to_string(g, g.node(n.inputs[0]).shape) << " axes=[";
      const auto axes = ir::reduced_axes(n);
      for (size_t i = 0; i < axes.size(); ++i) os << (i ? "," : "") << axes[i];
      os << "]\n";
      continue;
    }
    if (G.matmul_of >= 0) os << " matmul";
    os << " O=" << ir::shape_to_string(g, G.outer) << " C=" << ir::shape_to_string(g, {G.inner})
       << " loops=" << G.num_loops << " nodes=[";
    for (size_t i = 0; i < G.nodes.size(); ++i) {
      const int32_t id = G.nodes[i];
      os << (i ? "," : "") << id << ":" << ir::op_name(g.node(id).op)
         << (s.role[id] == NodeRole::row_vector ? "/v" : "/s") << s.phase[id];
    }
    os << "] out=[";
    bool first = true;
    for (int32_t id : G.nodes) {
      if (!s.materialized[id]) continue;
      os << (first ? "" : ",") << id;
      first = false;
    }
    os << "]\n";
  }
  return os.str();
}

}  // namespace kiln::compiler
