// Internal to the codegen: what the C++ (CPU) and CUDA emitters share. The
// value-level text (C types, literals, one op as an expression, loads and
// stores by dtype) and the structure of a fused group (its kernel arguments,
// how an operand's row is addressed) do not depend on the loop shape; each
// emitter adds its own loops around them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "code_writer.h"
#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/dtype_rounding.h"
#include "kiln/compiler/schedule.h"

namespace kiln::compiler::codegen_detail {

using ir::Dim;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

// A generated name, `prefix` followed by `n` ("b3", "v12"). Appended rather
// than written "b" + std::to_string(n): GCC 12's -Wrestrict misfires on a
// literal + std::string&& once inlined (GCC bug 105329).
template <typename Int>
std::string numbered(const char* prefix, Int n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

// The C type a value is computed in.
enum class CType : uint8_t { f32, f64, i64, b };

CType ctype_of(DType t);

const char* cname(CType t);

const char* storage_name(DType t);

inline bool is_leaf(const Node& n) { return n.op == Op::input || n.op == Op::constant; }

std::string convert(const std::string& e, CType from, CType to);

std::string float_literal(double v, CType t);

std::string literal(double v, DType dtype);

Shape pad_left(const Shape& s, size_t rank);

// Strips leading ones (for comparing shapes that broadcast to the same numel).
Shape strip_leading_ones(const Shape& s);

bool all_ones(const Shape& s);

// Where each node lives in the plan.
struct BufferMap {
  std::vector<PlanBuffer> buffers;
  std::vector<int32_t> read_buffer;                  // per node: plan buffer to read it from, or -1
  std::vector<std::vector<uint32_t>> write_buffers;  // per node: plan buffers it is written to
};

BufferMap plan_buffers(const Graph& g, const Schedule& s, const ir::SymbolValues& sv);

// Text in parentheses unless it is one token (no space in it).
std::string paren(const std::string& e);

// What the backends' shared policies differ in, as constants (each emitter
// passes its own: cpu_codegen.cpp, cuda_codegen.cpp).
struct BackendPolicy {
  // f32 division and rsqrt through the device's 2-ulp instructions
  // (__fdividef, rsqrtf) instead of the IEEE sequences, which cost more than
  // a memory-bound kernel can hide, within the f32 tolerance; and the cheaper
  // gelu of values rounded to 16 bits (gelu_narrow.h).
  bool device_math = false;
  // A standalone reduction's float sums and products accumulate in double in
  // rows too, not only in columns (where a thread walks a column alone).
  // Rows that combine partials in trees stay accurate without.
  bool wide_row_sums = false;
  // plan_split(): a standalone reduction takes two launches when it has
  // fewer than *_split_outputs outputs (or an unknown count) and its split
  // run (rows: the last reduced run; columns: the first) has at least two
  // chunks of *_split_chunk values (or an unknown length); the run is cut
  // into chunks, max_split_parts at most. Columns split only where
  // split_columns.
  int64_t row_split_outputs = 0;
  int64_t row_split_chunk = 0;
  bool split_columns = false;
  int64_t column_split_outputs = 0;
  int64_t column_split_chunk = 0;
  int64_t max_split_parts = 1;
};

// The partial's type of a split reduction accumulating in `acc`.
DType partial_dtype(CType acc);

// One fused group being lowered to one kernel. Subclasses emit the loops.
// They read the group through the accessors below and record what the
// kernel reads and writes through add_read() and add_write(); the state the
// shared text builds up (argument slots, helpers, symbols, constants, row
// offsets) stays private to this class.
class GroupEmitter {
 public:
  GroupEmitter(const Graph& g, const Schedule& s, const BufferMap& bm, int32_t gi,
               const ir::SymbolValues& sv, std::string entry, const BackendPolicy& policy);
  virtual ~GroupEmitter() = default;
  GroupEmitter(const GroupEmitter&) = delete;
  GroupEmitter& operator=(const GroupEmitter&) = delete;
  GroupEmitter(GroupEmitter&&) = delete;
  GroupEmitter& operator=(GroupEmitter&&) = delete;

  // ---- standalone reductions: one launch or two ----------------------------
  // A reduction with few outputs, each over a long run, gives too few
  // threads work: two launches, the first computing `parts` partials per
  // output into a temp buffer, the second combining them.
  struct SplitPlan {
    bool split = false;
    SizeExpr parts = SizeExpr::constant(1);
    SizeExpr outputs = SizeExpr::constant(1);
  };
  // Whether the group's reduction takes two launches (BackendPolicy).
  SplitPlan plan_split();
  // The accumulator type of the group's standalone reduction.
  CType reduce_acc_type();
  // pass 0: one kernel; 1: the split's partials; 2: their combination.
  // partial_buffers: the plan buffers of the partials (values, then
  // argmax's indices).
  void set_pass(int pass, std::vector<uint32_t> partial_buffers);
  void set_split_parts(SizeExpr parts) { split_parts_ = std::move(parts); }

  // The kernel's source, once emitted.
  const std::string& source() const { return source_; }
  std::string take_source() { return std::move(source_); }
  // The plan buffers of the kernel's arguments, in argument (slot) order.
  const std::vector<uint32_t>& arg_buffers() const { return arg_buffers_; }

 protected:
  // ---- the group and what it is lowered against ------------------------------
  const Graph& graph() const { return g_; }
  const Schedule& schedule() const { return s_; }
  const BufferMap& buffer_map() const { return bm_; }
  int32_t group_index() const { return gi_; }
  const FusedGroup& group() const { return G_; }
  const ir::SymbolValues& symbol_values() const { return sv_; }
  const std::string& entry() const { return entry_; }

  // ---- argument slots -------------------------------------------------------
  // Each returns the new argument's slot (its index in arg_buffers()): a
  // buffer node `node` is read from; one that `node` is written to (of
  // possibly several); a buffer the emitter addresses itself (a split's
  // partials).
  int32_t add_read(int32_t node, uint32_t buffer);
  int32_t add_write(int32_t node, uint32_t buffer);
  int32_t add_argument(uint32_t buffer);
  bool has_read_slot(int32_t node) const { return read_slot_.count(node) != 0; }
  int32_t read_slot(int32_t node) const { return read_slot_.at(node); }
  const std::map<int32_t, int32_t>& read_slots() const { return read_slot_; }
  const std::vector<int32_t>& write_slots(int32_t node) const { return write_slots_.at(node); }
  const std::map<int32_t, std::vector<int32_t>>& write_slots() const { return write_slots_; }

  // ---- what the emitted text used ---------------------------------------------
  // Helper bits (cpu_detail::Helper) of the helpers the text calls.
  unsigned helpers() const { return helpers_; }
  // Symbols read by value (dim() of an unbound symbol).
  const std::set<int32_t>& used_symbols() const { return used_syms_; }
  // Per constant node, its declaration.
  const std::map<int32_t, std::string>& constants() const { return constants_; }
  // Whether row_access() addressed an operand through the row's multi-index.
  bool needs_row_index() const { return need_index_; }
  // row_access()'s offsets: expression -> variable, and the expressions in
  // order of first use.
  const std::map<std::string, std::string>& offset_vars() const { return offset_vars_; }
  const std::vector<std::string>& offset_order() const { return offset_order_; }
  // A fresh local for node `node`: `prefix`, the node, `_` and a counter
  // unique in the kernel ("x3_7").
  std::string fresh_name(const char* prefix, int32_t node);
  void set_source(std::string text) { source_ = std::move(text); }

  // ---- kernel text both backends lay out alike ---------------------------------
  // The comment that opens a kernel: "Generated by Kiln: <kind> <entry> ..."
  // and what the group is; `shape_note` says how the kernel covers it
  // (after "; " for reductions and index groups, ", " for fused groups;
  // none when empty).
  void kernel_comment(CodeWriter& w, const char* kind, const std::string& shape_note) const;
  // One kernel argument: its element type, whether the kernel writes it,
  // and what it is (the comment beside its declaration).
  struct Argument {
    DType dtype;
    bool writable;
    std::string note;
  };
  // The kernel's arguments, in slot order.
  std::vector<Argument> arguments() const;

  // ---- split reductions ---------------------------------------------------------
  int pass() const { return pass_; }
  const SizeExpr& split_parts() const { return split_parts_; }
  // The slot of partial k (0: values, 1: argmax's indices).
  int32_t part_slot(size_t k) const { return part_slots_.at(k); }
  // A standalone reduction's arguments: its operand's buffers (not in pass
  // 2), the partials (in a split), its outputs (not in pass 1).
  void reduction_arguments();

  // ---- statements ----------------------------------------------------------------
  // Where an emitter's statements go, and what is already loaded there.
  struct Scope {
    CodeWriter* out;
    CodeWriter* pre;  // CUDA: a chunk's loads, before its element loop; null elsewhere
    std::map<std::string, std::string> loads;  // key -> var
    std::set<int32_t> recomputed;
    bool in_loop;
    int32_t phase;
  };
  // Node `id`'s value as a local `v<id>` in scope sc: the backend's own.
  virtual void emit_node(int32_t id, Scope& sc) = 0;
  // A row-scalar node at row scope, then its stores, each under
  // `store_condition` unless empty. Loads at row scope are shared between
  // row-scalars.
  void emit_row_scalar(int32_t id, CodeWriter& w, const std::string& store_condition);
  void store_row_scalar(int32_t id, CodeWriter& w, const std::string& store_condition);

  // ---- dims ---------------------------------------------------------------
  std::string dim(const Dim& d);

  // Product of dims [b, e) as C++ text, constants folded.
  std::string prod(const Shape& sh, size_t b, size_t e);

  // ---- arguments ------------------------------------------------------------
  void collect_arguments();

  // ---- values ---------------------------------------------------------------
  std::string load_expr(DType t, int32_t slot, const std::string& idx);

  // A stored element `p` (in its storage type) as a value of the compute type.
  std::string load_value(DType t, const std::string& p);

  std::string store_stmt(DType t, int32_t slot, const std::string& idx, const std::string& v);

  // Value `v` of the compute type in the dtype's storage type.
  std::string store_value(DType t, const std::string& v);

  // Rounds a freshly computed value to its node's dtype.
  std::string finish(const std::string& e, DType t);

  std::string constant_ref(int32_t id);

  // The expression computing node n from operand expressions (already in
  // each operand's compute type), converted to n's compute type.
  std::string op_expr(int32_t id, const std::vector<std::string>& args);

  // An operand computed inline from graph inputs rather than read from a buffer.
  bool recomputed_here(int32_t op) const;

  // ---- row kernels ------------------------------------------------------------
  // The offset variable of external node m's row, read by a node whose shape
  // is O ++ [C] (inner = true, reader_plus1 = true), O ++ [1] (inner = false,
  // reader_plus1 = true) or O (reader_plus1 = false). Returns the variable
  // and whether the inner index advances along c.
  std::pair<std::string, bool> row_access(int32_t m, bool reader_plus1, bool reader_inner);

  // How a reader indexes the domain: shape O ++ [C] (plus1, inner),
  // O ++ [1] (plus1) or O.
  struct ReaderKind {
    bool plus1;
    bool inner;
  };

  ReaderKind kind_of(int32_t reader) const;

  // An operand recomputed here from graph inputs (recomputed_here), at the
  // reader's element, once per scope: its inputs come from `operand`, the
  // emitter's own operand().
  template <typename Operand>
  std::string inline_operand(int32_t op, ReaderKind k, Scope& sc, Operand&& operand) {
    const Node& m = g_.node(op);
    const std::string key =
        "w" + std::to_string(op) + (k.plus1 ? "+" : "-") + (k.inner ? "c" : "r");
    auto it = sc.loads.find(key);
    if (it != sc.loads.end()) return it->second;
    std::vector<std::string> args;
    for (int32_t c : m.inputs) args.push_back(operand(c));
    std::string var = fresh_name("w", op);
    sc.out->line(cname(ctype_of(m.dtype)), " ", var, " = ", finish(op_expr(op, args), m.dtype),
                 ";");
    sc.loads[key] = var;
    return var;
  }

  static CType acc_type(const Node& r, const Node& in);

  static bool float_minmax(const Node& r, const Node& in);
  static bool float_sum(const Node& r, const Node& in);

  std::string acc_init(const Node& r, CType t);

  static std::string accumulate(const Node& r, const std::string& acc, const std::string& v);

  // ---- standalone reductions (FusedGroup::reduction_of) -------------------------
  // A run of adjacent operand dims that are all reduced or all kept (dims of
  // constant 1 dropped): its extent and its stride in the operand, as text.
  struct ReduceSegment {
    Shape dims;
    bool reduced = false;
    std::string extent;
    std::string stride;
  };

  // The operand's dims as alternating kept and reduced runs. There is always
  // a reduced run (one of extent 1 at the end when every reduced dim is 1).
  std::vector<ReduceSegment> reduce_segments();

  // The accumulator type of a standalone reduction: float sums and products
  // in double on the CPU (wide_sums), max/min/argmax in the compute type,
  // integers and bools in int64_t.
  static CType general_acc_type(const Node& r, const Node& in, bool wide_sums);

  // The nodes a standalone reduction reads from buffers: its operand, or the
  // leaves of the operand's inline cone (reduction_operand_inline).
  std::set<int32_t> reduction_reads() const;

  // The standalone reduction's operand at element `idx`, in type `to`:
  // a load, or its inline cone computed there (statements written to `w`).
  std::string reduction_operand_at(const std::string& idx, CType to, CodeWriter& w);

  // Combines (b, bi) into (a, ai).
  static std::string general_combine(const Node& r, CType t, const std::string& a,
                                     const std::string& ai, const std::string& b,
                                     const std::string& bi);

  // ---- index groups (FusedGroup::index_of) ----------------------------------------
  // The argument slots: per operand, its buffer, or the leaves of its cone
  // when computed inline (index_operand_inline); then the node's outputs.
  void index_arguments();

  // Operand `op` of the index node at its flat offset `off`, in its storage
  // type: a load, or its inline cone computed there (statements written to
  // `w`; every node of the cone has the operand's shape).
  std::string index_operand_at(int32_t op, const std::string& off, CodeWriter& w);

  // Row-major strides of `sh` as text (constants folded).
  std::vector<std::string> strides_of(const Shape& sh);

  // Sum of terms[j] * strides[j] as text, terms and strides of "0" dropped.
  static std::string dot(const std::vector<std::string>& terms,
                         const std::vector<std::string>& strides);

  // The value gather yields for an index out of range, in the storage type.
  static std::string fill_literal(DType t);

  // The statements computing the index node's element at multi-index
  // i0 .. i<rank-1> (variables of type `it`), written to `w`; returns the
  // variable holding it, in the storage type. Every offset stays below its
  // operand's element count (a plan buffer's), so `it` may be int where
  // every extent is below 2^31 (CUDA's index32).
  std::string index_element(const std::string& it, CodeWriter& w);

  // index_element(), then its stores at offset `at` of each of the index
  // node's outputs.
  void store_index_element(const std::string& it, const std::string& at, CodeWriter& w);

  // "permute of node 3 f32 [n, 4] to [4, n]"
  std::string index_note() const;

  // "reduce_sum of node 3 f32 [4, n, 8] over axes [0, 2]"
  std::string reduction_note() const;

  // Declares `base`, the operand offset of the kept runs kept[0..nk) of the
  // output index held in `t` (the last run varies fastest; t is consumed).
  static void decompose_kept(const std::vector<size_t>& kept, size_t nk, CodeWriter& w);

  // Nested loops over the reduced runs `loops` (r<j> over E<j>, offset
  // off<j> from `base`), with inner(offset) writing the innermost body. The
  // first loop starts at `first_begin` and steps by `first_step` (empty: 1).
  static void nest_reduced(const std::vector<size_t>& loops, CodeWriter& w,
                           const std::function<void(const std::string&)>& inner,
                           const std::string& first_begin = "0",
                           const std::string& first_step = "");

  static std::string general_acc_init(const Node& r, CType t);

  // One accumulation step of value v (in the accumulator type) at reduced
  // position `pos` (argmax's index: acc holds the best value, idx its index).
  // With `sentinel`, argmax's idx starts at INT64_MAX (none seen yet) and the
  // first value is taken whatever it is.
  static std::string general_accumulate(const Node& r, CType t, const std::string& acc,
                                        const std::string& idx, const std::string& v,
                                        const std::string& pos, bool sentinel = false);

  // The finished value of a standalone reduction from its accumulator (and
  // index), in the node's compute type, rounded to its dtype. `count` is the
  // number of values reduced, as text (for mean).
  std::string general_finish(const Node& r, CType t, const std::string& acc, const std::string& idx,
                             const std::string& count);

  std::optional<int64_t> static_c() const;

  std::string describe(int32_t node) const;

  std::string describe_buffer(uint32_t b, int32_t node) const;

  // The 16-bit float type node `id`'s value only ever reaches memory
  // rounded to: its own, or that of every user when each is a cast to f16
  // or bf16 (f16 when both occur: it keeps more bits) and the graph does not
  // return the node. Such a value needs far less than f32's accuracy, and a
  // cheaper formula can give it.
  std::optional<DType> rounded_to_16_bits(int32_t id) const;

 private:
  const Graph& g_;
  const Schedule& s_;
  const BufferMap& bm_;
  int32_t gi_;
  const FusedGroup& G_;
  const ir::SymbolValues& sv_;
  std::string entry_;
  BackendPolicy policy_;
  std::string source_;
  std::vector<uint32_t> arg_buffers_;
  bool need_index_ = false;
  int pass_ = 0;
  std::vector<uint32_t> partial_buffers_;
  std::vector<int32_t> part_slots_;
  DType partial_dtype_ = DType::f32;  // of the partial values
  SizeExpr split_parts_ = SizeExpr::constant(1);
  std::map<std::string, std::string> row_loads_;
  unsigned helpers_ = 0;
  NameGenerator names_;
  std::set<int32_t> used_syms_;
  std::map<int32_t, int32_t> read_slot_;
  std::map<int32_t, std::vector<int32_t>> write_slots_;
  std::map<int32_t, std::string> constants_;
  std::map<std::string, std::string> offset_vars_;
  std::vector<std::string> offset_order_;
};

}  // namespace kiln::compiler::codegen_detail
