// C++ codegen for CPU targets: one translation unit per fused group
// (docs/codegen.md describes the kernel shapes).
#include "kiln/compiler/cpu_codegen.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "code_writer.h"
#include "cpu_codegen_support.h"
#include "group_emitter.h"
#include "kiln/compiler/schedule.h"
#include "matmul_plan.h"

namespace kiln::compiler {
namespace {

using namespace codegen_detail;  // NOLINT(google-build-using-namespace)
using namespace cpu_detail;      // NOLINT(google-build-using-namespace)

// The CPU's policies: a work item is a whole row, so float sums keep double
// accumulators in rows too; a rows reduction splits when fewer than 16
// outputs (too few work items for the threads) each reduce at least two
// chunks of 32768 values, into 64 parts at most; columns never split.
constexpr BackendPolicy kCpuPolicy = {
    /*device_math=*/false,
    /*wide_row_sums=*/true,
    /*row_split_outputs=*/16,
    /*row_split_chunk=*/32768,
    /*split_columns=*/false,
    /*column_split_outputs=*/0,
    /*column_split_chunk=*/0,
    /*max_split_parts=*/64,
};

class KernelEmitter : public GroupEmitter {
 public:
  KernelEmitter(const Graph& g, const Schedule& s, const BufferMap& bm, int32_t gi,
                const ir::SymbolValues& sv, std::string entry)
      : GroupEmitter(g, s, bm, gi, sv, std::move(entry), kCpuPolicy) {}

  void run() {
    if (group().matmul_of >= 0) {
      emit_matmul();
      assemble();
      return;
    }
    if (group().reduction_of >= 0) {
      reduction_arguments();
      emit_reduction(body_);
      assemble();
      return;
    }
    if (group().index_of >= 0) {
      index_arguments();
      emit_index();
      assemble();
      return;
    }
    collect_arguments();
    if (group().copy_of >= 0) {
      flat_ = true;
    } else {
      flat_ = is_flat();
    }
    if (flat_) {
      emit_flat();
    } else {
      emit_rows();
    }
    assemble();
  }

  SizeExpr work_items = SizeExpr::constant(1);
  SizeExpr item_cost = SizeExpr::constant(1);

 private:
  // ---- flat kernels -----------------------------------------------------------
  // Whether every buffer the node reads (through inline cones) is either the
  // full domain or a single element.
  bool flat_operand(int32_t op, const Shape& full) const {
    const Node& m = graph().node(op);
    if (m.op == Op::constant || schedule().group_of[static_cast<size_t>(op)] == group_index())
      return true;
    if (recomputed_here(op)) {
      return std::all_of(m.inputs.begin(), m.inputs.end(),
                         [&](int32_t c) { return flat_operand(c, full); });
    }
    return all_ones(m.shape) || strip_leading_ones(m.shape) == full;
  }

  bool is_flat() const {
    if (group().has_reduction) return false;
    const Shape full = strip_leading_ones(group().domain());
    for (int32_t id : group().nodes) {
      if (schedule().role[static_cast<size_t>(id)] != NodeRole::row_vector) return false;
      for (int32_t op : graph().node(id).inputs) {
        if (!flat_operand(op, full)) return false;
      }
    }
    return true;
  }

  void emit_flat() {
    const Shape dom = group().domain();
    work_items = SizeExpr::product(bind_shape(dom, symbol_values()));
    item_cost = SizeExpr::constant(1);
    CodeWriter& w = body_;
    w.line("// Flat: one work item per element.");
    w.directive("#pragma clang loop vectorize(enable)");
    auto elements = w.block("for (int64_t i = begin; i < end; ++i)");
    if (group().copy_of >= 0) {
      const Node& n = graph().node(group().copy_of);
      const std::string v = n.op == Op::constant
                                ? constant_ref(group().copy_of)
                                : load_expr(n.dtype, read_slot(group().copy_of), "i");
      for (int32_t slot : write_slots(group().copy_of)) w.line(store_stmt(n.dtype, slot, "i", v));
      return;
    }
    Scope sc{&w, nullptr, {}, {}, true, 0};
    for (int32_t id : group().nodes) {
      const Node& n = graph().node(id);
      emit_node(id, sc);
      if (schedule().materialized[static_cast<size_t>(id)]) {
        for (int32_t slot : write_slots(id)) {
          w.line(store_stmt(n.dtype, slot, "i", numbered("v", id)));
        }
      }
    }
  }

  // A row-vector node cheap enough to recompute in a later loop instead of
  // keeping it in scratch: a short inline cone over graph inputs (a cast of
  // an input, say).
  bool rematerializable(int32_t id) const {
    const auto u = static_cast<size_t>(id);
    return schedule().inlinable[u] && schedule().inline_ops[u] <= 2;
  }

  // Expression of operand `op` read by a reader of kind k within scope sc.
  std::string operand(int32_t op, ReaderKind k, Scope& sc) {
    const Node& m = graph().node(op);
    if (m.op == Op::constant) return constant_ref(op);
    const auto o = static_cast<size_t>(op);
    if (schedule().group_of[o] == group_index()) {
      if (schedule().role[o] == NodeRole::row_scalar || schedule().phase[o] == sc.phase)
        return "v" + std::to_string(op);
      // A row-vector of an earlier loop.
      if (rematerializable(op)) {
        if (!sc.recomputed.count(op)) {
          emit_node(op, sc);
          sc.recomputed.insert(op);
        }
        return "v" + std::to_string(op);
      }
      return "scr" + std::to_string(op) + "[c]";
    }
    if (recomputed_here(op)) {
      return inline_operand(op, k, sc, [&](int32_t c) { return operand(c, k, sc); });
    }
    // A graph input or a buffer of an earlier group.
    std::string idx;
    if (flat_) {
      idx = all_ones(m.shape) ? "0" : "i";
    } else {
      const auto [off, inner] = row_access(op, k.plus1, k.inner);
      idx = inner && sc.in_loop ? off + " + c" : off;
    }
    const std::string key = std::to_string(op) + "@" + idx;
    auto it = sc.loads.find(key);
    if (it != sc.loads.end()) return it->second;
    std::string var = fresh_name("x", op);
    sc.out->line(cname(ctype_of(m.dtype)), " ", var, " = ", load_expr(m.dtype, read_slot(op), idx),
                 ";");
    sc.loads[key] = var;
    return var;
  }

  // Values are plain (non-const) locals: clang tries to constant-evaluate
  // const initializers recursively, which overflows its stack on a chain of
  // thousands of ops.
  void emit_node(int32_t id, Scope& sc) override {
    const Node& n = graph().node(id);
    const ReaderKind k = kind_of(id);
    std::vector<std::string> args;
    for (int32_t op : n.inputs) args.push_back(operand(op, k, sc));
    sc.out->line(cname(ctype_of(n.dtype)), " ", numbered("v", id), " = ",
                 finish(op_expr(id, args), n.dtype), ";");
  }

  // One loop body over c for loop `p`: the row-vector nodes of phase p,
  // scratch and buffer stores, and the reductions' accumulation into
  // acc_names.at(r).
  void emit_loop_body(int32_t p, CodeWriter& w, const std::map<int32_t, std::string>& acc_names) {
    Scope sc{&w, nullptr, {}, {}, true, p};
    for (int32_t id : group().nodes) {
      const auto u = static_cast<size_t>(id);
      if (schedule().phase[u] != p) continue;
      const Node& n = graph().node(id);
      if (ir::is_reduction(n.op)) {
        const Node& in = graph().node(n.inputs[0]);
        const std::string v =
            convert(operand(n.inputs[0], kind_of(id), sc), ctype_of(in.dtype), acc_type(n, in));
        w.line(accumulate(n, acc_names.at(id), v));
        continue;
      }
      if (schedule().role[u] != NodeRole::row_vector) continue;
      emit_node(id, sc);
      const std::string v = numbered("v", id);
      if (scratch_.count(id)) w.line(numbered("scr", id), "[c] = ", v, ";");
      if (schedule().materialized[u]) {
        for (int32_t slot : write_slots(id)) {
          w.line(store_stmt(n.dtype, slot, "ow + c", v));
          need_ow_ = true;
        }
      }
    }
  }

  void emit_loop(int32_t p, CodeWriter& w) {
    std::vector<int32_t> reds;
    bool any_minmax = false;
    bool any_fsum = false;
    for (int32_t id : group().nodes) {
      const Node& n = graph().node(id);
      if (!ir::is_reduction(n.op) || schedule().phase[static_cast<size_t>(id)] != p) continue;
      reds.push_back(id);
      const Node& in = graph().node(n.inputs[0]);
      any_minmax |= float_minmax(n, in);
      any_fsum |= float_sum(n, in);
    }
    const std::optional<int64_t> cstatic = static_c();
    w.line("// Loop ", std::to_string(p), ".");
    std::map<int32_t, std::string> acc;
    if (any_minmax) {
      // Float max/min do not vectorize as reductions without fast-math;
      // eight explicit lanes (fully unrolled, SLP-vectorized) do.
      for (int32_t r : reds) {
        const Node& n = graph().node(r);
        const CType t = acc_type(n, graph().node(n.inputs[0]));
        const std::string init = acc_init(n, t);
        std::string lanes = init;
        for (int k = 1; k < 8; ++k) lanes += ", " + init;
        w.line(cname(t), " ", numbered("r", r), "[8] = {", lanes, "};");
        acc[r] = numbered("r", r) + "[j]";
      }
      // The lane loop's counter is named by loop: a row runs several loops
      // in one scope.
      const std::string c0 = numbered("c0_", p);
      w.line("int64_t ", c0, " = 0;");
      {
        auto steps = w.block("for (; " + c0 + " + 8 <= C; " + c0 + " += 8)");
        auto lanes = w.block("for (int64_t j = 0; j < 8; ++j)");
        w.line("const int64_t c = ", c0, " + j;");
        emit_loop_body(p, w, acc);
      }
      for (int32_t r : reds) acc[r] = numbered("r", r) + "[0]";
      {
        auto rest = w.block("for (int64_t c = " + c0 + "; c < C; ++c)");
        emit_loop_body(p, w, acc);
      }
      for (int32_t r : reds) {
        const Node& n = graph().node(r);
        const CType t = acc_type(n, graph().node(n.inputs[0]));
        const std::string a = numbered("r", r);
        std::string e;
        if (n.op == Op::reduce_max || n.op == Op::reduce_min) {
          const char* cmp = n.op == Op::reduce_max ? " > " : " < ";
          const std::string m = numbered("m", r);
          w.line(cname(t), " ", m, " = ", a, "[0];");
          w.line("for (int j = 1; j < 8; ++j) ", m, " = ", a, "[j]", cmp, m, " ? ", a, "[j] : ", m,
                 ";");
          e = m;
        } else {
          // (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])))
          e = "(((";
          for (int k = 0; k < 8; ++k) {
            if (k == 4) e += " + ((";
            if (k % 2 == 0 && k % 4 != 0) e += " + (";
            if (k % 2 == 1) e += " + ";
            e.append(a).append("[").append(std::to_string(k)).append("]");
            if (k % 2 == 1) e += ")";
            if (k % 4 == 3) e += ")";
          }
          e += ")";
        }
        finalize_reduction(r, e, w);
      }
      return;
    }
    for (int32_t r : reds) {
      const Node& n = graph().node(r);
      const CType t = acc_type(n, graph().node(n.inputs[0]));
      w.line(cname(t), " ", numbered("r", r), " = ", acc_init(n, t), ";");
      acc[r] = numbered("r", r);
    }
    const bool blocked = any_fsum && !(cstatic && *cstatic <= kBlock);
    if (blocked) {
      // Float sums in blocks of kBlock: partial sums keep long rows accurate
      // even where the loop does not vectorize.
      std::map<int32_t, std::string> part;
      for (const auto& [r, a] : acc) {
        const Node& n = graph().node(r);
        part[r] = float_sum(n, graph().node(n.inputs[0])) ? numbered("q", r) : a;
      }
      const std::string blk = std::to_string(kBlock);
      auto blocks = w.block("for (int64_t cb = 0; cb < C; cb += " + blk + ")");
      w.line("const int64_t ce = C - cb < ", blk, " ? C : cb + ", blk, ";");
      for (int32_t r : reds) {
        const Node& n = graph().node(r);
        if (!float_sum(n, graph().node(n.inputs[0]))) continue;
        const CType t = acc_type(n, graph().node(n.inputs[0]));
        w.line(cname(t), " ", numbered("q", r), " = ", acc_init(n, t), ";");
      }
      w.directive("#pragma clang loop vectorize(enable)");
      {
        auto elements = w.block("for (int64_t c = cb; c < ce; ++c)");
        emit_loop_body(p, w, part);
      }
      for (int32_t r : reds) {
        const Node& n = graph().node(r);
        if (float_sum(n, graph().node(n.inputs[0]))) {
          w.line(numbered("r", r), " += ", numbered("q", r), ";");
        }
      }
    } else {
      w.directive("#pragma clang loop vectorize(enable)");
      auto elements = w.block("for (int64_t c = 0; c < C; ++c)");
      emit_loop_body(p, w, acc);
    }
    for (int32_t r : reds) finalize_reduction(r, numbered("r", r), w);
  }

  void finalize_reduction(int32_t r, const std::string& acc_expr, CodeWriter& w) {
    const Node& n = graph().node(r);
    const Node& in = graph().node(n.inputs[0]);
    const CType t = acc_type(n, in);
    std::string e = acc_expr;
    if (n.op == Op::reduce_mean) {
      if (t == CType::f32) {
        e = "(" + e + " / (float)C)";
      } else if (t == CType::f64) {
        e = "(" + e + " / (double)C)";
      } else {
        e = "(" + e + " / C)";
      }
    }
    w.line(cname(ctype_of(n.dtype)), " ", numbered("v", r), " = ",
           finish(convert(e, t, ctype_of(n.dtype)), n.dtype), ";");
    store_row_scalar(r, w, "");
  }

  void emit_rows() {
    const size_t orank = group().outer.size();
    work_items = SizeExpr::product(bind_shape(group().outer, symbol_values()));
    item_cost = SizeExpr::of_dim(bind_shape({group().inner}, symbol_values())[0]);

    // Row-vectors used by a later loop are kept in per-row scratch (unless
    // cheap to recompute).
    for (int32_t id : group().nodes) {
      const Node& n = graph().node(id);
      if (ir::is_reduction(n.op)) continue;
      for (int32_t op : n.inputs) {
        const auto o = static_cast<size_t>(op);
        if (schedule().group_of[o] != group_index() || schedule().role[o] != NodeRole::row_vector)
          continue;
        if (schedule().phase[o] < schedule().phase[static_cast<size_t>(id)] &&
            !rematerializable(op))
          scratch_.insert(op);
      }
    }

    // The row's body first: it decides which offsets, scratch rows and
    // indices the code before it declares.
    CodeWriter rowbody;
    // Row-scalars of phase p run before loop p; those past the last loop after it.
    for (int32_t p = 0; p < group().num_loops; ++p) {
      for (int32_t id : group().nodes) {
        const auto u = static_cast<size_t>(id);
        if (schedule().role[u] == NodeRole::row_scalar && !ir::is_reduction(graph().node(id).op) &&
            schedule().phase[u] == p) {
          emit_row_scalar(id, rowbody, "");
        }
      }
      emit_loop(p, rowbody);
    }
    for (int32_t id : group().nodes) {
      const auto u = static_cast<size_t>(id);
      if (schedule().role[u] == NodeRole::row_scalar && !ir::is_reduction(graph().node(id).op) &&
          schedule().phase[u] >= group().num_loops) {
        emit_row_scalar(id, rowbody, "");
      }
    }

    CodeWriter& w = body_;
    w.line("// Rows: one work item per row of ", std::to_string(orank),
           " outer dim(s); C elements each.");
    w.line("const int64_t C = ", dim(group().inner), ";");
    // Scratch rows.
    const std::optional<int64_t> cs = static_c();
    std::vector<int32_t> heap_scratch;
    for (int32_t id : scratch_) {
      const Node& n = graph().node(id);
      const char* t = cname(ctype_of(n.dtype));
      const std::string name = numbered("scr", id);
      if (cs && *cs * 8 <= kStackScratchBytes) {
        w.line(t, " ", name, "[", std::to_string(std::max<int64_t>(*cs, 1)), "];");
      } else {
        w.line(t, "* __restrict ", name, " = (", t, "*)__builtin_malloc(sizeof(", t,
               ") * (C > 0 ? C : 1));");
        w.line("if (", name, " == 0) __builtin_trap();");
        heap_scratch.push_back(id);
      }
    }
    if (needs_row_index()) {
      for (size_t j = 0; j < orank; ++j) {
        w.line("const int64_t O", std::to_string(j), " = ", dim(group().outer[j]), ";");
      }
      w.line("// Multi-index of the row, advanced incrementally.");
      for (size_t j = 0; j < orank; ++j) w.line("int64_t ", numbered("i", j), ";");
      auto first_row = w.block("");
      w.line("int64_t t = begin;");
      for (size_t j = orank; j-- > 1;) {
        const std::string js = std::to_string(j);
        w.line("i", js, " = t % O", js, ";");
        w.line("t /= O", js, ";");
      }
      w.line("i0 = t;");
    }
    {
      auto rows = w.block("for (int64_t row = begin; row < end; ++row)");
      for (const auto& expr : offset_order()) {
        w.line("const int64_t ", offset_vars().at(expr), " = ", expr, ";");
      }
      if (need_ow_) w.line("const int64_t ow = row * C;");
      w.insert(rowbody);
      if (needs_row_index()) next_row_index(w, orank);
    }
    for (int32_t id : heap_scratch) w.line("__builtin_free(", numbered("scr", id), ");");
  }

  // Advances the row's multi-index i0 .. i<orank-1> to the next row: the
  // last index, carrying into the ones before it.
  static void next_row_index(CodeWriter& w, size_t orank) {
    std::vector<CodeWriter::Block> carries;
    for (size_t j = orank; j-- > 1;) {
      const std::string i = numbered("i", j);
      carries.push_back(w.block("if (++" + i + " == " + numbered("O", j) + ")"));
      w.line(i, " = 0;");
    }
    w.line("++i0;");
    while (!carries.empty()) carries.pop_back();  // innermost first
  }

  // ---- matmul groups --------------------------------------------------------------
  // A blocked GEMM (docs/codegen.md): a work item is kMatmulRows rows of one
  // batch's D. Per block of kMatmulCols columns it keeps the tile's sums in
  // f32 and walks K in blocks of kMatmulDepth, first converting the block
  // of B (and of A) to f32 on the stack, whatever the dtypes and transposes,
  // so the inner loop is a plain f32 multiply-add over contiguous columns
  // that the compiler vectorizes for the target's width.
  void emit_matmul() {
    const MatmulPlan p = plan_matmul(graph(), schedule(), group_index(), symbol_values());
    for (int32_t r : {p.a, p.b, p.bias}) {
      if (r < 0 || has_read_slot(r)) continue;
      const int32_t b = buffer_map().read_buffer[static_cast<size_t>(r)];
      if (b < 0) throw std::logic_error("kiln codegen: matmul operand has no buffer");
      add_read(r, static_cast<uint32_t>(b));
    }
    for (uint32_t b : buffer_map().write_buffers[static_cast<size_t>(p.out)]) {
      add_write(p.out, b);
    }
    const SizeExpr tiles = p.m.ceil_div(SizeExpr::constant(kMatmulRows));
    work_items = p.batch * tiles;
    item_cost = SizeExpr::constant(kMatmulRows) * p.k * p.n;

    const std::string rows = std::to_string(kMatmulRows);
    const std::string cols = std::to_string(kMatmulCols);
    const std::string depth = std::to_string(kMatmulDepth);
    const std::string a = numbered("b", read_slot(p.a));
    const std::string b = numbered("b", read_slot(p.b));
    const DType t = p.dtype;
    const std::string load_a =
        load_value(t, p.trans_a ? "A[(k0 + kk) * LDA + i0 + ii]" : "A[(i0 + ii) * LDA + k0 + kk]");
    const std::string load_b =
        load_value(t, p.trans_b ? "B[(j0 + jj) * LDB + k0 + kk]" : "B[(k0 + kk) * LDB + j0 + jj]");
    std::string v = "acc[ii][jj]";
    if (p.alpha != 1.0) v = "(" + v + " * " + float_literal(p.alpha, CType::f32) + ")";
    if (p.bias >= 0) {
      v = "(" + v + " + " + load_value(t, numbered("b", read_slot(p.bias)) + "[j0 + jj]") + ")";
    }
    CodeWriter& w = body_;
    w.line("// ", describe(p.out), " = ", p.relu ? "relu(" : "(",
           p.alpha != 1.0 ? float_literal(p.alpha, CType::f32) + " * " : "", "A",
           p.trans_a ? "^T" : "", " B", p.trans_b ? "^T" : "", p.bias >= 0 ? " + bias" : "",
           ") over ", p.batch.to_string(graph()), " batch(es) of ", p.m.to_string(graph()), " x ",
           p.n.to_string(graph()), " x ", p.k.to_string(graph()), ".");
    w.line("[[maybe_unused]] const int64_t* syms = args->symbols;");
    auto def = [&](const char* name, const SizeExpr& e) {
      w.line("const int64_t ", name, " = ", e.to_cpp("syms"), ";");
    };
    def("M", p.m);
    def("N", p.n);
    def("K", p.k);
    def("LDA", p.lda);
    def("LDB", p.ldb);
    def("SA", p.stride_a);
    def("SB", p.stride_b);
    def("TILES", tiles);
    w.line("float bp[", depth, " * ", cols, "];");
    w.line("float ap[", rows, " * ", depth, "];");
    auto items = w.block("for (int64_t w = begin; w < end; ++w)");
    w.line("const int64_t bi = w / TILES;");
    w.line("const int64_t i0 = (w % TILES) * ", rows, ";");
    w.line("const int64_t mr = M - i0 < ", rows, " ? M - i0 : ", rows, ";");
    w.line("const ", storage_name(t), "* A = ", a, " + bi * SA;");
    w.line("const ", storage_name(t), "* B = ", b, " + bi * SB;");
    auto column_blocks = w.block("for (int64_t j0 = 0; j0 < N; j0 += " + cols + ")");
    w.line("const int64_t nb = N - j0 < ", cols, " ? N - j0 : ", cols, ";");
    w.line("float acc[", rows, "][", cols, "] = {};");
    {
      auto depth_blocks = w.block("for (int64_t k0 = 0; k0 < K; k0 += " + depth + ")");
      w.line("const int64_t kb = K - k0 < ", depth, " ? K - k0 : ", depth, ";");
      // The blocks of B and A in f32, zero past the matrices' edges: two
      // loops (no braces) around one statement each.
      auto convert_block = [&](const std::string& outer, const std::string& inner,
                               const std::string& statement) {
        w.line(outer);
        w.indent();
        w.line(inner);
        w.indent();
        w.line(statement);
        w.dedent();
        w.dedent();
      };
      convert_block("for (int64_t kk = 0; kk < kb; ++kk)",
                    "for (int64_t jj = 0; jj < " + cols + "; ++jj)",
                    "bp[kk * " + cols + " + jj] = jj < nb ? " + load_b + " : 0.0f;");
      convert_block("for (int64_t ii = 0; ii < " + rows + "; ++ii)",
                    "for (int64_t kk = 0; kk < kb; ++kk)",
                    "ap[ii * " + depth + " + kk] = ii < mr ? " + load_a + " : 0.0f;");
      auto depth_loop = w.block("for (int64_t kk = 0; kk < kb; ++kk)");
      auto row_loop = w.block("for (int64_t ii = 0; ii < " + rows + "; ++ii)");
      w.line("const float av = ap[ii * ", depth, " + kk];");
      w.line("for (int64_t jj = 0; jj < ", cols, "; ++jj) acc[ii][jj] += av * bp[kk * ", cols,
             " + jj];");
    }
    auto out_rows = w.block("for (int64_t ii = 0; ii < mr; ++ii)");
    auto out_cols = w.block("for (int64_t jj = 0; jj < nb; ++jj)");
    w.line("float v = ", v, ";");
    if (p.relu) w.line("v = v > 0.0f ? v : 0.0f;");
    w.line("const int64_t at = bi * M * N + (i0 + ii) * N + j0 + jj;");
    for (int32_t slot : write_slots(p.out)) w.line(store_stmt(t, slot, "at", "v"));
  }

  static constexpr int64_t kMatmulRows = 8;
  static constexpr int64_t kMatmulCols = 64;
  static constexpr int64_t kMatmulDepth = 256;

  // ---- index groups -----------------------------------------------------------------
  // A work item is a block of up to kIndexBlock elements of a row of the
  // result's last dim (a whole row when it is statically that short): the
  // row's multi-index once, then a loop along the row, in which clang hoists
  // what does not depend on it (a gather's index, a concat's choice of
  // operand). Blocks keep a long 1-D result spread over the threads.
  // The element and its stores are shared (store_index_element); the loops
  // and how they give the multi-index are the CPU's own (docs/codegen.md).
  void emit_index() {
    const Node& n = graph().node(group().index_of);
    const size_t rank = n.shape.size();
    const Shape outer(n.shape.begin(), rank > 0 ? n.shape.end() - 1 : n.shape.end());
    const SizeExpr c_extent =
        rank > 0 ? SizeExpr::of_dim(bind_shape({n.shape.back()}, symbol_values())[0])
                 : SizeExpr::constant(1);
    const bool whole_rows = c_extent.is_constant() && c_extent.evaluate({}) <= kIndexBlock;
    const std::string blk = std::to_string(kIndexBlock);
    CodeWriter& w = body_;
    w.line(whole_rows ? "// Index: a work item per row of the result's last dim."
                      : "// Index: a work item per block of up to " + blk +
                            " elements of a row of the result's last dim.");
    w.line("const int64_t C = ", rank > 0 ? dim(n.shape.back()) : std::string("1"), ";");
    // O0 is never needed: the row's first index is what the divisions leave.
    for (size_t j = 1; j + 1 < rank; ++j) {
      w.line("const int64_t O", std::to_string(j), " = ", dim(n.shape[j]), ";");
    }
    if (!whole_rows) w.line("const int64_t nb = (C + ", blk, " - 1) / ", blk, ";");
    {
      auto items = w.block("for (int64_t item = begin; item < end; ++item)");
      if (whole_rows) {
        w.line("const int64_t row = item;");
        w.line("const int64_t c_begin = 0;");
        w.line("const int64_t c_end = C;");
      } else {
        w.line("const int64_t row = item / nb;");
        w.line("const int64_t c_begin = (item % nb) * ", blk, ";");
        w.line("const int64_t c_end = C - c_begin < ", blk, " ? C : c_begin + ", blk, ";");
      }
      if (rank > 1) {
        w.line("int64_t t = row;");
        for (size_t j = rank - 1; j-- > 0;) {
          const std::string js = std::to_string(j);
          if (j == 0) {
            w.line("const int64_t i0 = t;");
          } else {
            w.line("const int64_t i", js, " = t % O", js, ";");
            w.line("t /= O", js, ";");
          }
        }
      }
      w.line("const int64_t ow = row * C;");
      w.directive("#pragma clang loop vectorize(enable)");
      auto elements = w.block("for (int64_t c = c_begin; c < c_end; ++c)");
      if (rank > 0) w.line("const int64_t i", std::to_string(rank - 1), " = c;");
      store_index_element("int64_t", "ow + c", w);
    }
    const SizeExpr rows = SizeExpr::product(bind_shape(outer, symbol_values()));
    if (whole_rows) {
      work_items = rows;
      item_cost = c_extent;
    } else {
      work_items = rows * c_extent.ceil_div(SizeExpr::constant(kIndexBlock));
      item_cost = c_extent.min(SizeExpr::constant(kIndexBlock));
    }
  }

  // ---- standalone reductions ----------------------------------------------------
  // A rows reduction with few outputs over a long last run splits
  // (plan_split, kCpuPolicy): the first launch computes `parts` partials
  // per output (a work item each) into a temp buffer, the second combines
  // them (a work item per output).
  // The operand's dims merge into alternating kept (K) and reduced (R) runs.
  // When the last run is kept (a reduction over a leading or middle axis),
  // a work item is a block of up to kColBlock consecutive outputs: the
  // reduced runs are outer loops, and the inner loop over the block reads
  // consecutive elements into as many accumulators (it vectorizes). When the
  // last run is reduced, a work item is one output, the other reduced runs
  // outer loops and the last the contiguous inner loop.
  void emit_reduction(CodeWriter& w) {
    const int32_t rid = group().reduction_of;
    const Node& r = graph().node(rid);
    const int32_t in_id = r.inputs.at(0);
    const Node& in = graph().node(in_id);
    const std::vector<ReduceSegment> segs = reduce_segments();
    const bool columns = !segs.back().reduced;
    const CType at = general_acc_type(r, in, true);
    const std::string acc_t = cname(at);
    // Extents, strides and counts.
    std::vector<size_t> kept;
    std::vector<size_t> red;
    Shape kept_dims;
    Shape red_dims;
    for (size_t j = 0; j < segs.size(); ++j) {
      const std::string js = std::to_string(j);
      w.line("const int64_t E", js, " = ", segs[j].extent, ";  // ",
             segs[j].reduced ? "reduced" : "kept");
      w.line("const int64_t S", js, " = ", segs[j].stride, ";");
      (segs[j].reduced ? red : kept).push_back(j);
      Shape& d = segs[j].reduced ? red_dims : kept_dims;
      d.insert(d.end(), segs[j].dims.begin(), segs[j].dims.end());
    }
    std::string count = "(int64_t)1";
    for (size_t j : red) count += " * E" + std::to_string(j);
    w.line("const int64_t count = ", count, ";  // values per output");
    w.line("(void)count;");
    const SizeExpr red_count = SizeExpr::product(bind_shape(red_dims, symbol_values()));
    const std::vector<int32_t> outs = pass() == 1 ? std::vector<int32_t>{} : write_slots(rid);
    auto store_outputs = [&](const std::string& res, const std::string& where) {
      w.line(cname(ctype_of(r.dtype)), " y = ", res, ";");
      for (int32_t slot : outs) w.line(store_stmt(r.dtype, slot, where, "y"));
    };
    // The kept runs (but a columns kernel's last) from the work item `t`.
    const bool arg = r.op == Op::argmax;
    if (columns) {
      const size_t last = segs.size() - 1;
      const std::string ls = std::to_string(last);
      const std::string blk = std::to_string(kColBlock);
      w.line("// Columns: a work item is a block of up to ", blk,
             " consecutive outputs of the last kept run.");
      w.line("const int64_t nb = (E", ls, " + ", blk, " - 1) / ", blk, ";");
      {
        auto items = w.block("for (int64_t item = begin; item < end; ++item)");
        w.line("int64_t t = item / nb;");
        w.line("const int64_t ob = t * E", ls, ";");
        w.line("const int64_t blk0 = (item % nb) * ", blk, ";");
        w.line("const int64_t nbk = E", ls, " - blk0 < ", blk, " ? E", ls, " - blk0 : ", blk, ";");
        decompose_kept(kept, kept.size() - 1, w);
        w.line("base += blk0;");
        w.line(acc_t, " acc[", blk, "];");
        if (arg) w.line("int64_t idx[", blk, "];");
        {
          auto block = w.block("for (int64_t b = 0; b < nbk; ++b)");
          w.line("acc[b] = ", general_acc_init(r, at), ";");
          if (arg) w.line("idx[b] = 0;");
        }
        // argmax's position: its one reduced run's index.
        const std::string pos = arg ? numbered("r", red.front()) : "0";
        nest_reduced(red, w, [&](const std::string& off) {
          w.directive("#pragma clang loop vectorize(enable)");
          auto block = w.block("for (int64_t b = 0; b < nbk; ++b)");
          const std::string v = reduction_operand_at(off + " + b", at, w);
          w.line(acc_t, " v = ", v, ";");
          w.line(general_accumulate(r, at, "acc[b]", "idx[b]", "v", pos));
        });
        auto block = w.block("for (int64_t b = 0; b < nbk; ++b)");
        store_outputs(general_finish(r, at, "acc[b]", "idx[b]", "count"), "ob + blk0 + b");
      }
      const Shape outer_kept(kept_dims.begin(),
                             kept_dims.end() - static_cast<std::ptrdiff_t>(segs[last].dims.size()));
      const SizeExpr b_ext = SizeExpr::product(bind_shape(segs[last].dims, symbol_values()));
      work_items = SizeExpr::product(bind_shape(outer_kept, symbol_values())) *
                   b_ext.ceil_div(SizeExpr::constant(kColBlock));
      item_cost = red_count * b_ext.min(SizeExpr::constant(kColBlock));
      return;
    }
    const size_t last = segs.size() - 1;
    const std::string ls = std::to_string(last);
    const std::string chunk = std::to_string(kCpuPolicy.row_split_chunk);
    const std::string smax = std::to_string(kCpuPolicy.max_split_parts);
    const SizeExpr n_out = SizeExpr::product(bind_shape(kept_dims, symbol_values()));
    if (pass() != 0) {
      w.line("// Partials per output (the plan's temp holds outputs * parts).");
      w.line("const int64_t parts = (E", ls, " + ", chunk, " - 1) / ", chunk, " < ", smax, " ? (E",
             ls, " + ", chunk, " - 1) / ", chunk, " : ", smax, ";");
    }
    if (pass() == 2) {
      w.line("// Split rows, second pass: a work item combines one output's partials.");
      {
        auto items = w.block("for (int64_t item = begin; item < end; ++item)");
        w.line(acc_t, " acc = ", general_acc_init(r, at), ";");
        if (arg) w.line("int64_t idx = INT64_MAX;  // none yet");
        {
          auto parts = w.block("for (int64_t p = 0; p < parts; ++p)");
          w.line(acc_t, " b = ", numbered("b", part_slot(0)), "[item * parts + p];");
          if (arg) w.line("int64_t bi = ", numbered("b", part_slot(1)), "[item * parts + p];");
          w.line(general_combine(r, at, "acc", "idx", "b", "bi"));
        }
        store_outputs(general_finish(r, at, "acc", "idx", "count"), "item");
      }
      work_items = n_out;
      item_cost = split_parts();
      return;
    }
    w.line(pass() == 1 ? "// Split rows, first pass: a work item is part (item % parts) of output "
                         "(item / parts)."
                       : "// Rows: a work item is one output; the last reduced run is the inner "
                         "loop.");
    {
      auto items = w.block("for (int64_t item = begin; item < end; ++item)");
      std::string c_begin = "0";
      std::string c_end = "E" + ls;
      if (pass() == 1) {
        w.line("int64_t t = item / parts;");
        w.line("const int64_t part = item % parts;");
        w.line("const int64_t len = (E", ls, " + parts - 1) / parts;");
        w.line("const int64_t c_begin = part * len;");
        w.line("const int64_t c_end = c_begin + len < E", ls, " ? c_begin + len : E", ls, ";");
        c_begin = "c_begin";
        c_end = "c_end";
      } else {
        w.line("int64_t t = item;");
      }
      decompose_kept(kept, kept.size(), w);
      w.line(acc_t, " acc = ", general_acc_init(r, at), ";");
      // A part's first value is its best so far whatever it is (argmax).
      if (arg) w.line(pass() == 1 ? "int64_t idx = INT64_MAX;  // none yet" : "int64_t idx = 0;");
      std::vector<size_t> outer_red(red.begin(), red.end() - 1);
      nest_reduced(outer_red, w, [&](const std::string& off) {
        w.directive("#pragma clang loop vectorize(enable)");
        auto loop = w.block("for (int64_t c = " + c_begin + "; c < " + c_end + "; ++c)");
        const std::string v = reduction_operand_at(off + " + c", at, w);
        w.line(acc_t, " v = ", v, ";");
        w.line(general_accumulate(r, at, "acc", "idx", "v", "c", pass() == 1 && arg));
      });
      if (pass() == 1) {
        w.line(numbered("b", part_slot(0)), "[item] = acc;");
        if (arg) w.line(numbered("b", part_slot(1)), "[item] = idx;");
      } else {
        store_outputs(general_finish(r, at, "acc", "idx", "count"), "item");
      }
    }
    if (pass() == 1) {
      work_items = n_out * split_parts();
      item_cost = red_count.ceil_div(split_parts());
      return;
    }
    work_items = n_out;
    item_cost = red_count;
  }

  // ---- assembly ---------------------------------------------------------------
  void assemble() {
    const bool fused = group().copy_of < 0 && group().reduction_of < 0 && group().matmul_of < 0 &&
                       group().index_of < 0;
    CodeWriter w;
    kernel_comment(w, "kernel",
                   !fused  ? std::string()
                   : flat_ ? std::string("flat")
                           : "rows, " + std::to_string(group().num_loops) + " loop(s) per row");
    w.line("#include <stdint.h>");
    w.line("#include <math.h>");
    w.line();
    w.line("extern \"C\" {");
    w.raw(kAbiStruct);
    w.line();
    w.line("}");
    w.line();
    // Per helper: its bit, its text, and whether the text is a shared one
    // that takes kCpuHelperSpecifiers in front.
    static const std::tuple<unsigned, std::string_view, bool> kHelpers[] = {
        {kHelperBits, kHelperBitsText, false},    {kHelperBf16, kHelperBf16Text, false},
        {kHelperF16, kHelperF16Text, false},      {kHelperTanh, kHelperTanhText, true},
        {kHelperGelu, kHelperGeluDivText, false}, {kHelperGelu, kHelperGeluText, true},
        {kHelperIntDiv, kHelperIntDivText, true}, {kHelperIntPow, kHelperIntPowText, true}};
    bool any = false;
    for (const auto& [bit, text, shared] : kHelpers) {
      if (helpers() & bit) {
        if (shared) w.raw(kCpuHelperSpecifiers);
        w.raw(text);
        any = true;
      }
    }
    if (any) w.line();
    {
      auto kernel =
          w.block("extern \"C\" __attribute__((visibility(\"default\"))) void " + entry() +
                  "(const KilnCpuKernelArgs* args, int64_t begin, int64_t end)");
      for (int32_t sym : used_symbols()) {
        const std::string s = std::to_string(sym);
        w.line("const int64_t s", s, " = args->symbols[", s, "];  // ",
               graph().symbols[static_cast<size_t>(sym)].name);
      }
      // Buffers, in argument order.
      const std::vector<Argument> args = arguments();
      for (size_t slot = 0; slot < args.size(); ++slot) {
        const Argument& a = args[slot];
        const std::string type = std::string(a.writable ? "" : "const ") + storage_name(a.dtype);
        const std::string b = std::to_string(slot);
        w.line(type, "* __restrict b", b, " = (", type, "*)args->buffers[", b, "];  // ", a.note);
      }
      for (const auto& [id, text] : constants()) w.line(text);
      w.insert(body_);
    }
    set_source(w.text());
  }

  static constexpr int64_t kBlock = 256;
  static constexpr int64_t kColBlock = 256;
  static constexpr int64_t kIndexBlock = 4096;
  static constexpr int64_t kStackScratchBytes = 32768;

  bool flat_ = false;
  bool need_ow_ = false;
  std::set<int32_t> scratch_;
  CodeWriter body_;  // the kernel function's body
};

}  // namespace

CpuLoweredGraph lower_cpu(const ir::Graph& g, const ir::SymbolValues& static_values,
                          const CpuCodegenOptions& options) {
  const Schedule s = schedule_graph(g);
  const BufferMap bm = plan_buffers(g, s, static_values);
  CpuLoweredGraph out;
  out.buffers = bm.buffers;
  uint32_t temps = 0;
  for (const PlanBuffer& b : out.buffers) temps += b.role == BufferRole::temp ? 1 : 0;
  for (size_t gi = 0; gi < s.groups.size(); ++gi) {
    const std::string entry = options.entry_prefix + "_k" + std::to_string(gi);
    std::vector<int> passes = {0};
    std::vector<uint32_t> partials;
    std::vector<PlanBuffer> partial_info;
    SizeExpr parts = SizeExpr::constant(1);
    if (s.groups[gi].reduction_of >= 0) {
      KernelEmitter planner(g, s, bm, static_cast<int32_t>(gi), static_values, entry);
      const auto plan = planner.plan_split();
      if (plan.split) {
        passes = {1, 2};
        parts = plan.parts;
        const DType pd = partial_dtype(planner.reduce_acc_type());
        partial_info.push_back({BufferRole::temp, temps++, pd, plan.outputs * plan.parts});
        if (g.node(s.groups[gi].reduction_of).op == Op::argmax) {
          partial_info.push_back(
              {BufferRole::temp, temps++, DType::i64, plan.outputs * plan.parts});
        }
        for (const PlanBuffer& pb : partial_info) {
          partials.push_back(static_cast<uint32_t>(out.buffers.size()));
          out.buffers.push_back(pb);
        }
      }
    }
    for (int pass : passes) {
      const std::string name = pass == 2 ? entry + "_final" : entry;
      KernelEmitter e(g, s, bm, static_cast<int32_t>(gi), static_values, name);
      e.set_pass(pass, partials);
      e.set_split_parts(parts);
      e.run();
      out.launches.push_back(CpuLaunch{static_cast<uint32_t>(out.kernels.size()), e.arg_buffers(),
                                       e.work_items, e.item_cost});
      out.kernels.push_back(CpuKernel{name, e.take_source()});
    }
  }
  return out;
}

std::string cpu_abi_source() {
  CodeWriter w;
  w.line("// Generated by Kiln: the CPU kernel ABI version of this shared object.");
  w.line("extern \"C\" __attribute__((visibility(\"default\"))) int kiln_cpu_abi_version(void) { ",
         "return 1; }");
  return w.text();
}

std::vector<std::string> cpu_compile_flags(const std::string& arch) {
  static const char* const kArchs[] = {"x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"};
  if (std::find_if(std::begin(kArchs), std::end(kArchs),
                   [&](const char* a) { return arch == a; }) == std::end(kArchs)) {
    throw std::invalid_argument("kiln: unknown CPU arch '" + arch +
                                "' (expected x86-64, x86-64-v2, x86-64-v3 or x86-64-v4)");
  }
  std::vector<std::string> flags = {"-O3",
                                    "-std=c++17",
                                    "-fPIC",
                                    "-march=" + arch,
                                    "-fno-math-errno",
                                    "-fno-exceptions",
                                    "-fno-rtti",
                                    "-fvisibility=hidden",
                                    "-ffp-contract=fast",
                                    "-Wno-pass-failed"};
  // libmvec's vector math only where AVX2 is guaranteed: clang 14 maps an
  // 8-wide f32 (4-wide f64) call to the AVX2 variant (_ZGVdN8v_expf) without
  // checking the target, and an SSE loop over 16-bit data picks that width,
  // which passes two xmm halves to a ymm function (wrong results, or SIGILL
  // without AVX2). On x86-64 and x86-64-v2 math calls therefore stay scalar.
  if (arch == "x86-64-v3" || arch == "x86-64-v4") flags.emplace_back("-fveclib=libmvec");
  // AVX-512: clang 14 knows no 16-wide libmvec variants; 256-bit vectors
  // keep the 8-wide ones (and avoid AVX-512 frequency drops).
  if (arch == "x86-64-v4") flags.emplace_back("-mprefer-vector-width=256");
  return flags;
}

}  // namespace kiln::compiler
