// CUDA codegen: one .cu translation unit per fused group (docs/codegen.md
// describes the kernel shapes).
//
// Two kernel shapes:
//  - pointwise: each thread computes V consecutive elements of a row (one
//    16-byte vector per buffer when the guards say the pointers are aligned
//    and the row width is a multiple of V), in a grid-stride loop;
//  - rows: a team of threads (a warp for narrow rows, the block for wide
//    ones) owns one row; each reduction is a per-thread partial, then a warp
//    shuffle tree and, for a block team, one shared-memory step. When the
//    row width is static and small enough, the values read from global
//    memory stay in registers across the group's loops, so softmax,
//    layernorm and rmsnorm read their input once.
// Row-vector values of an earlier loop are recomputed, not kept: the kernels
// are bound by memory, and recomputing costs fewer registers than keeping.
// The device helpers a kernel calls are CUDA files of their own (cuda/*.cuh,
// cuda_device_text.h), compiled in as text.
#include "kiln/compiler/cuda_codegen.h"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "code_writer.h"
#include "cpu_codegen_support.h"
#include "cuda_device_text.h"
#include "gelu_narrow.h"
#include "group_emitter.h"
#include "matmul_plan.h"

namespace kiln::compiler {
namespace {

using namespace codegen_detail;  // NOLINT(google-build-using-namespace)
using namespace cpu_detail;      // NOLINT(google-build-using-namespace)

constexpr int kPointwiseBlock = 256;
// Vectors per thread and step of a pointwise kernel: independent loads in
// flight per buffer hide more latency than one. Groups with libm's long
// trigonometric paths stay at one (their local memory would spill).
constexpr int kPointwiseUnroll = 2;
constexpr int kWarp = 32;
// Per thread, values kept in registers across loops at most (elements).
constexpr int64_t kMaxCachedElements = 64;
// Chunks per thread when a row is kept in registers.
constexpr int64_t kMaxChunks = 8;
// Bytes per thread of all a row's operand vectors, at most, for the ones
// first read in a later loop to be loaded in the first. Small: on an H200,
// loading rmsnorm's weight with x (64 bytes a thread in 512-thread rows)
// cost 0.4% of copy against loading it where it is used, from L2.
constexpr int64_t kPrefetchBytes = 32;
// Above this many vectors per row a block owns the row, below it a warp.
constexpr int64_t kWarpRowVectors = 128;
constexpr int64_t kMaxGrid = int64_t{1} << 24;
// Blocks a column kernel aims for: enough to fill any GPU several times.
constexpr int64_t kColumnBlocks = 4096;
constexpr int64_t kInt32IndexLimit = kCudaInt32IndexLimit;
// Standalone row reductions: threads per block; the split's elements per
// block at least, its blocks per output at most, and the outputs that fill
// a GPU without splitting.
constexpr int kReduceBlock = 256;
constexpr int64_t kSplitChunk = 4096;
constexpr int64_t kSplitMax = 128;
constexpr int64_t kSplitEnoughOutputs = 1024;
// Standalone column reductions: the outputs (threads) that need no split,
// and the values of the first reduced run per part of a split at least.
constexpr int64_t kColumnEnoughOutputs = 16384;
constexpr int64_t kColumnChunk = 64;
// The GPU's policies (BackendPolicy): rows combine partials in trees and
// keep the compute type, columns (a thread each) sum in double; both split.
constexpr BackendPolicy kCudaPolicy = {
    /*device_math=*/true,
    /*wide_row_sums=*/false,
    /*row_split_outputs=*/kSplitEnoughOutputs,
    /*row_split_chunk=*/kSplitChunk,
    /*split_columns=*/true,
    /*column_split_outputs=*/kColumnEnoughOutputs,
    /*column_split_chunk=*/kColumnChunk,
    /*max_split_parts=*/kSplitMax,
};

// The shared helpers of cpu_codegen_support.h (kCpuHelperSpecifiers) as
// inline device functions.
constexpr std::string_view kDeviceHelperSpecifiers = "static __device__ __forceinline__ ";

class CudaKernelEmitter : public GroupEmitter {
 public:
  CudaKernelEmitter(const Graph& g, const Schedule& s, const BufferMap& bm, int32_t gi,
                    const ir::SymbolValues& sv, std::string entry, bool aligned16,
                    bool index32 = false, bool nvrtc = false)
      : GroupEmitter(g, s, bm, gi, sv, std::move(entry), kCudaPolicy),
        aligned16_(aligned16),
        index32_(index32),
        nvrtc_(nvrtc) {}

  void run() {
    if (group().reduction_of >= 0) {
      emit_reduction(body_);
      assemble();
      return;
    }
    if (group().index_of >= 0) {
      index_arguments();
      choose_index_type();
      emit_index();
      assemble();
      return;
    }
    collect_arguments();
    choose_index_type();
    if (group().copy_of >= 0) {
      emit_copy();
    } else if (!group().has_reduction) {
      emit_pointwise();
    } else {
      emit_rows();
    }
    assemble();
  }

  CudaLaunch launch;
  bool vectorized() const { return need_vectors_; }

  // Operand vectors read in more than one loop of a row: only those are
  // worth registers. A first run of the emitter finds them (recomputation
  // makes that hard to know before emitting), the second keeps them.
  std::set<std::string> reread_vectors() const {
    std::set<std::string> out;
    for (const auto& [key, phases] : vector_phases_) {
      if (phases.size() > 1) out.insert(key);
    }
    return out;
  }
  void keep_in_registers(std::set<std::string> keys) { kept_ = std::move(keys); }

  // Operand vectors first read in a later loop (weights, say), when all of
  // the row's vectors fit in kPrefetchBytes per thread: loading them in the
  // first loop puts their latency before the reductions' barriers instead
  // of after.
  std::vector<std::pair<int32_t, bool>> late_vectors() const {
    std::vector<std::pair<int32_t, bool>> out;
    if (chunks_ == 0) return out;
    int64_t bytes = 0;
    for (const auto& [key, v] : vector_reads_) {
      bytes += chunks_ * v_ * static_cast<int64_t>(dtype_size(graph().node(v.op).dtype));
      if (*vector_phases_.at(key).begin() > 0) out.emplace_back(v.op, v.plus1);
    }
    if (bytes > kPrefetchBytes) out.clear();
    return out;
  }
  void prefetch(std::vector<std::pair<int32_t, bool>> reads) { prefetch_ = std::move(reads); }
  std::map<std::string, std::pair<int32_t, bool>> vector_keys() const {
    std::map<std::string, std::pair<int32_t, bool>> out;
    for (const auto& [key, v] : vector_reads_) out.emplace(key, std::make_pair(v.op, v.plus1));
    return out;
  }

 private:
  // ---- setup ----------------------------------------------------------------
  void choose_index_type() {
    // 32-bit indexing when every buffer this kernel touches is statically
    // small, or the specialization's guards say every extent is (index32):
    // int division is far cheaper than int64 on the GPU.
    bool small = true;
    for (uint32_t b : arg_buffers()) {
      const SizeExpr& numel = buffer_map().buffers[b].numel;
      small = small && numel.is_constant() && numel.evaluate({}) < kInt32IndexLimit;
    }
    const SizeExpr dom = SizeExpr::product(bind_shape(group().domain(), symbol_values()));
    small = small && dom.is_constant() && dom.evaluate({}) < kInt32IndexLimit;
    idx_ = small || index32_ ? "int" : "int64_t";
  }

  // V: elements per vector. 16 bytes of the narrowest buffer, when aligned,
  // the row width is static and a multiple of it.
  int64_t choose_vector_width() const {
    if (!aligned16_ || group().num_loops == 0) return 1;
    const std::optional<int64_t> c = static_c();
    if (!c) return 1;
    size_t narrowest = 8;
    for (uint32_t b : arg_buffers()) {
      narrowest =
          std::min(narrowest, static_cast<size_t>(dtype_size(buffer_map().buffers[b].dtype)));
    }
    const auto v = static_cast<int64_t>(16 / narrowest);
    return *c % v == 0 ? v : 1;
  }

  std::string storage(DType t) const { return storage_name(t); }

  bool heavy_math() const {
    return std::any_of(group().nodes.begin(), group().nodes.end(), [&](int32_t id) {
      const Op op = graph().node(id).op;
      return op == Op::sin || op == Op::cos || op == Op::pow;
    });
  }

  // ---- operands ---------------------------------------------------------------
  std::string operand(int32_t op, ReaderKind k, Scope& sc) {
    const Node& m = graph().node(op);
    if (m.op == Op::constant) return constant_ref(op);
    const auto o = static_cast<size_t>(op);
    if (schedule().group_of[o] == group_index()) {
      if (schedule().role[o] == NodeRole::row_scalar || schedule().phase[o] == sc.phase) {
        return "v" + std::to_string(op);
      }
      // A row-vector of an earlier loop: recomputed from what this loop reads.
      if (!sc.recomputed.count(op)) {
        emit_node(op, sc);
        sc.recomputed.insert(op);
      }
      return "v" + std::to_string(op);
    }
    if (recomputed_here(op)) {
      return inline_operand(op, k, sc, [&](int32_t c) { return operand(c, k, sc); });
    }
    const auto [off, inner] = row_access(op, k.plus1, k.inner);
    const std::string key = std::to_string(op) + "@" + off + (inner && sc.in_loop ? "+c" : "");
    auto it = sc.loads.find(key);
    if (it != sc.loads.end()) return it->second;
    std::string raw;
    if (inner && sc.in_loop) {
      raw = vector_element(op, off, sc, k.plus1);
    } else {
      raw = numbered("b", read_slot(op)) + "[" + off + "]";
    }
    std::string var = fresh_name("x", op);
    sc.out->line(cname(ctype_of(m.dtype)), " ", var, " = ", load_value(m.dtype, raw), ";");
    sc.loads[key] = var;
    return var;
  }

  // The element j of the vector at offset `off` + c0 of external node op, as
  // stored; loads the vector in the chunk's preamble (or, when the row stays
  // in registers, once per row).
  std::string vector_element(int32_t op, const std::string& off, Scope& sc, bool plus1 = true) {
    const Node& m = graph().node(op);
    const std::string slot = std::to_string(read_slot(op));
    // Keyed by the offset's expression, not its variable, whose name depends
    // on the order of first use (which prefetching changes between runs).
    std::string expr;
    for (const auto& [e, var] : offset_vars()) {
      if (var == off) expr = e;
    }
    const std::string key = std::to_string(op) + "@" + expr;
    vector_phases_[key].insert(sc.phase);
    vector_reads_.emplace(key, VectorRead{op, plus1});
    const std::string v = std::to_string(v_);
    if (chunks_ > 0 && kept_.count(key)) {
      auto it = cached_.find(key);
      if (it == cached_.end()) {
        const std::string name = numbered("r", op) + "_" + std::to_string(cached_.size());
        row_decls_.line("alignas(16) ", storage(m.dtype), " ", name, "[", std::to_string(chunks_),
                        "][", v, "];");
        it = cached_.emplace(key, name).first;
        sc.pre->line(load_stmt(m.dtype, slot, off, it->second + "[k]",
                               hinted_rows_ && !row_invariant_read(op)));
      }
      return it->second + "[k][j]";
    }
    const std::string pre_key = "vec:" + key;
    auto it = sc.loads.find(pre_key);
    if (it == sc.loads.end()) {
      const std::string name = fresh_name("l", op);
      // A column kernel loads a vector that is the same for every row once,
      // before its loop over rows.
      const bool hoist = columns_ && expr == "0";
      CodeWriter& where = hoist ? column_pre_ : *sc.pre;
      where.line("alignas(16) ", storage(m.dtype), " ", name, "[", v, "];");
      where.line(load_stmt(m.dtype, slot, off, name));
      it = sc.loads.emplace(pre_key, name).first;
    }
    return it->second + "[j]";
  }

  std::string load_stmt(DType t, const std::string& slot, const std::string& off,
                        const std::string& dest, bool hinted = false) {
    (void)t;
    const std::string addr = "b" + slot + " + " + paren(off) + " + c0";
    if (v_ == 1) return dest + "[0] = b" + slot + "[" + paren(off) + " + c0];";
    need_vectors_ = true;
    if (hinted) {
      need_row_policy_ = true;
      return "kiln_vload_rows<" + std::to_string(v_) + ">(" + addr + ", " + dest +
             ", kiln_policy);";
    }
    return "kiln_vload<" + std::to_string(v_) + ">(" + addr + ", " + dest + ");";
  }

  void emit_node(int32_t id, Scope& sc) override {
    const Node& n = graph().node(id);
    const ReaderKind k = kind_of(id);
    std::vector<std::string> args;
    for (int32_t op : n.inputs) args.push_back(operand(op, k, sc));
    const std::string v = numbered("v", id);
    if (n.dtype == DType::bf16 || n.dtype == DType::f16) {
      // Rounded once: the stored bits (h<id>) and the value (v<id>) come
      // from one conversion, which a store then reuses.
      const std::string h = numbered("h", id);
      sc.out->line("const uint16_t ", h, " = ", store_value(n.dtype, "(" + op_expr(id, args) + ")"),
                   ";");
      sc.out->line("float ", v, " = ", load_value(n.dtype, h), ";");
      return;
    }
    sc.out->line(cname(ctype_of(n.dtype)), " ", v, " = ", finish(op_expr(id, args), n.dtype), ";");
  }

  // The stored form of node id's value (see emit_node).
  std::string stored(const Node& n, int32_t id) {
    if (n.dtype == DType::bf16 || n.dtype == DType::f16) return "h" + std::to_string(id);
    return store_value(n.dtype, numbered("v", id));
  }

  // ---- one chunk: V elements of a row -------------------------------------------
  // The row-vector nodes of loop p over elements c0 .. c0 + V - 1, the
  // accumulation of loop p's reductions, and the stores: the vectors'
  // loads, a loop over the elements, then the vectors' stores.
  void chunk(int32_t p, CodeWriter& w, const std::map<int32_t, std::string>& accs) {
    CodeWriter pre;
    CodeWriter body;
    CodeWriter post;
    Scope sc{&body, &pre, {}, {}, true, p};
    if (p == 0) {
      for (const auto& [op, plus1] : prefetch_) {
        const std::string off = row_access(op, plus1, true).first;
        vector_element(op, off, sc, plus1);
      }
    }
    const std::string v = std::to_string(v_);
    for (int32_t id : group().nodes) {
      const auto u = static_cast<size_t>(id);
      if (schedule().phase[u] != p) continue;
      const Node& n = graph().node(id);
      if (ir::is_reduction(n.op)) {
        const Node& src = graph().node(n.inputs[0]);
        const std::string value =
            convert(operand(n.inputs[0], kind_of(id), sc), ctype_of(src.dtype), acc_type(n, src));
        body.line(accumulate(n, accs.at(id), value));
        continue;
      }
      if (schedule().role[u] != NodeRole::row_vector) continue;
      emit_node(id, sc);
      if (!schedule().materialized[u]) continue;
      for (int32_t slot : write_slots(id)) {
        const std::string st = numbered("st", slot);
        pre.line("alignas(16) ", storage(n.dtype), " ", st, "[", v, "];");
        body.line(st, "[j] = ", stored(n, id), ";");
        const std::string b = numbered("b", slot);
        if (v_ == 1) {
          post.line(b, "[ow + c0] = ", st, "[0];");
        } else {
          need_vectors_ = true;
          post.line(stream_stores_ ? "kiln_vstore_stream<" : "kiln_vstore<", v, ">(", b,
                    " + ow + c0, ", st, ");");
        }
      }
    }
    w.insert(pre);
    if (v_ == 1) {
      auto element = w.block("");
      w.line("const int j = 0;");
      w.insert(body);
    } else {
      w.line("#pragma unroll");
      auto elements = w.block("for (int j = 0; j < " + v + "; ++j)");
      w.insert(body);
    }
    w.insert(post);
  }

  // ---- row scalars ------------------------------------------------------------
  // Declarations of the row's index: multi-index and operand offsets.
  void row_prelude(CodeWriter& w) {
    const size_t orank = group().outer.size();
    if (needs_row_index()) {
      for (size_t j = 0; j < orank; ++j) w.line(idx_, " ", numbered("i", j), ";");
      auto row_index = w.block("");
      w.line(idx_, " rest = row;");
      for (size_t j = orank; j-- > 1;) {
        const std::string extent = paren(dim(group().outer[j]));
        w.line(numbered("i", j), " = rest % ", extent, ";");
        w.line("rest /= ", extent, ";");
      }
      w.line("i0 = rest;");
    }
    for (const auto& expr : offset_order()) {
      if (columns_ && expr == "0") continue;  // declared before the loop over rows
      w.line("const ", idx_, " ", offset_vars().at(expr), " = ", expr, ";");
    }
    w.line("[[maybe_unused]] const ", idx_, " ow = row * C;");
  }

  // ---- kernels ------------------------------------------------------------------
  // The head of a grid-stride loop over `var` in [0, N), a thread per value.
  std::string grid_stride_loop(const std::string& var) const {
    return "for (" + idx_ + " " + var + " = (" + idx_ + ")blockIdx.x * blockDim.x + threadIdx.x; " +
           var + " < N; " + var + " += (" + idx_ + ")gridDim.x * blockDim.x)";
  }

  void emit_copy() {
    const Node& n = graph().node(group().copy_of);
    const SizeExpr numel = SizeExpr::product(bind_shape(group().domain(), symbol_values()));
    block_ = kPointwiseBlock;
    launch.grid[0] = numel.ceil_div(SizeExpr::constant(block_)).min(SizeExpr::constant(kMaxGrid));
    CodeWriter& w = body_;
    w.line("// Copy: one element per thread, grid-stride.");
    w.line("const ", idx_, " N = ", prod(group().domain(), 0, group().domain().size()), ";");
    {
      auto elements = w.block(grid_stride_loop("i"));
      const std::string v = n.op == Op::constant
                                ? constant_ref(group().copy_of)
                                : load_expr(n.dtype, read_slot(group().copy_of), "i");
      for (int32_t slot : write_slots(group().copy_of)) {
        w.line(store_stmt(n.dtype, slot, "i", v));
      }
    }
    shape_note_ = "copy";
  }

  // One element of the result per thread, grid-stride (as emit_copy): its
  // multi-index by division, then its operands' offsets. The element and
  // its stores are shared (store_index_element); the loop and how it gives
  // the multi-index are the GPU's own (docs/codegen.md).
  void emit_index() {
    const Node& n = graph().node(group().index_of);
    const size_t rank = n.shape.size();
    const SizeExpr numel = SizeExpr::product(bind_shape(n.shape, symbol_values()));
    block_ = kPointwiseBlock;
    launch.grid[0] = numel.ceil_div(SizeExpr::constant(block_)).min(SizeExpr::constant(kMaxGrid));
    CodeWriter& w = body_;
    w.line("// Index: one element per thread, grid-stride.");
    w.line("const ", idx_, " N = ", prod(n.shape, 0, rank), ";");
    {
      auto elements = w.block(grid_stride_loop("e"));
      if (rank > 0) {
        w.line(idx_, " t = e;");
        for (size_t j = rank; j-- > 0;) {
          const std::string js = std::to_string(j);
          if (j == 0) {
            w.line("const ", idx_, " i0 = t;");
          } else {
            const std::string extent = dim(n.shape[j]);
            w.line("const ", idx_, " i", js, " = t % ", paren(extent), ";");
            w.line("t /= ", paren(extent), ";");
          }
        }
      }
      store_index_element(idx_, "e", w);
    }
    shape_note_ = "index, an element per thread";
  }

  // Whether node `op`, read by this group (through inline cones), is a
  // buffer of shape [C] broadcast over every row: the same vector for all
  // rows.
  bool row_invariant_read(int32_t op) const {
    const Node& m = graph().node(op);
    if (m.op == Op::constant || schedule().group_of[static_cast<size_t>(op)] == group_index())
      return false;
    if (recomputed_here(op)) {
      return std::any_of(m.inputs.begin(), m.inputs.end(),
                         [&](int32_t c) { return row_invariant_read(c); });
    }
    const Shape p = pad_left(m.shape, group().outer.size() + 1);
    if (p.size() != group().outer.size() + 1 || p.back().is_one()) return false;
    return std::all_of(p.begin(), p.end() - 1, [](const Dim& d) { return d.is_one(); });
  }

  // Columns: each thread keeps one vector position of the row and walks the
  // rows, so operands broadcast over rows (a bias, a scale) are loaded and
  // widened once per thread instead of once per vector. Used when a
  // pointwise group reads such an operand, a row has enough vectors to fill
  // a block, and the data is 16-bit (8-element vectors), where the kernel is
  // bound by its arithmetic: measured on an H200 at 16384x4096, gelu(x*a+b)
  // in bf16 went from 78% to 84% of copy, while in f32, bound by memory, it
  // fell from 99% to 95-98%.
  bool use_columns() const {
    if (group().num_loops == 0 || v_ < 8) return false;
    const std::optional<int64_t> c = static_c();
    if (!c || *c / v_ < kPointwiseBlock) return false;
    for (int32_t id : group().nodes) {
      if (schedule().role[static_cast<size_t>(id)] != NodeRole::row_vector) return false;
    }
    for (int32_t id : group().nodes) {
      for (int32_t op : graph().node(id).inputs) {
        if (row_invariant_read(op)) return true;
      }
    }
    return false;
  }

  void emit_columns() {
    stream_stores_ = true;
    CodeWriter chunk_text;
    chunk(0, chunk_text, {});
    const int64_t cv = *static_c() / v_;
    const int64_t column_blocks = (cv + block_ - 1) / block_;
    const SizeExpr rows = SizeExpr::product(bind_shape(group().outer, symbol_values()));
    launch.grid[0] = SizeExpr::constant(column_blocks);
    launch.grid[1] = rows.min(SizeExpr::constant(
        std::max<int64_t>(1, (kColumnBlocks + column_blocks - 1) / column_blocks)));

    const std::string v = std::to_string(v_);
    CodeWriter& w = body_;
    w.line("// Columns: ", v,
           " element(s) of a row per vector; a thread keeps its vector position and walks the "
           "rows.");
    w.line("const ", idx_, " C = ", dim(group().inner), ";");
    w.line("const ", idx_, " ROWS = ", prod(group().outer, 0, group().outer.size()), ";");
    w.line("const ", idx_, " cv = (", idx_, ")blockIdx.x * ", std::to_string(block_),
           " + threadIdx.x;");
    w.line("if (cv >= C / ", v, ") return;");
    w.line("const ", idx_, " c0 = cv * ", v, ";");
    for (const auto& expr : offset_order()) {
      if (expr == "0") w.line("const ", idx_, " ", offset_vars().at(expr), " = 0;");
    }
    w.insert(column_pre_);
    // One row at a time, eight blocks an SM (32 registers): measured on an
    // H200, gelu(x*a+b) in bf16 went from 87.6% of copy (four rows unrolled,
    // 40 registers, six blocks) to 90.1%; unrolling two or four rows under
    // the same cap spilled. Sine, cosine and pow keep their registers.
    if (heavy_math()) {
      w.line("#pragma unroll 4");
    } else {
      min_blocks_ = 8;
      w.line("#pragma unroll 1");
    }
    auto rows_loop = w.block("for (" + idx_ + " row = blockIdx.y; row < ROWS; row += gridDim.y)");
    row_prelude(w);
    w.insert(chunk_text);
    shape_note_ = "columns, " + v + "-element vectors";
  }

  void emit_pointwise() {
    v_ = choose_vector_width();
    block_ = kPointwiseBlock;
    if (use_columns()) {
      columns_ = true;
      emit_columns();
      return;
    }
    const bool has_inner = group().num_loops > 0;
    CodeWriter rowbody;
    for (int32_t id : group().nodes) {
      if (schedule().role[static_cast<size_t>(id)] == NodeRole::row_scalar) {
        emit_row_scalar(id, rowbody, "c0 == 0");
      }
    }
    CodeWriter chunk_text;
    if (has_inner) chunk(0, chunk_text, {});

    const SizeExpr rows = SizeExpr::product(bind_shape(group().outer, symbol_values()));
    const SizeExpr c = SizeExpr::of_dim(bind_shape({group().inner}, symbol_values())[0]);
    const SizeExpr vectors =
        has_inner ? rows * (v_ == 1 ? c : SizeExpr::constant(c.evaluate({}) / v_)) : rows;
    unroll_ = heavy_math() ? 1 : kPointwiseUnroll;
    const int64_t step = static_cast<int64_t>(block_) * unroll_;
    launch.grid[0] = vectors.ceil_div(SizeExpr::constant(step)).min(SizeExpr::constant(kMaxGrid));

    const std::string v = std::to_string(v_);
    const std::string cv = v_ == 1 ? "C" : "(C / " + v + ")";
    CodeWriter& w = body_;
    w.line("// Pointwise: ", v, " element(s) of a row per vector, ", std::to_string(unroll_),
           " vector(s) per thread and step, grid-stride.");
    w.line("const ", idx_, " C = ", has_inner ? dim(group().inner) : std::string("1"), ";");
    w.line("const ", idx_, " ROWS = ", prod(group().outer, 0, group().outer.size()), ";");
    w.line("const ", idx_, " NV = ROWS * ", has_inner ? cv : std::string("1"), ";");
    const std::string steps = std::to_string(step);
    auto steps_loop =
        w.block("for (" + idx_ + " q0 = (" + idx_ + ")blockIdx.x * " + steps +
                " + threadIdx.x; q0 < NV; q0 += (" + idx_ + ")gridDim.x * " + steps + ")");
    // A full step runs unrolled without bounds checks, so the loads of all
    // its vectors are in flight together; the last, partial step checks.
    CodeWriter vector;  // the statements of one vector q
    if (has_inner) {
      vector.line("const ", idx_, " row = q / ", cv, ";");
      vector.line("const ", idx_, " c0 = (q - row * ", cv, ") * ", v, ";");
    } else {
      vector.line("const ", idx_, " row = q;");
      vector.line("[[maybe_unused]] const ", idx_, " c0 = 0;");
    }
    row_prelude(vector);
    vector.insert(rowbody);
    vector.insert(chunk_text);
    const std::string block = std::to_string(block_);
    const std::string unroll = std::to_string(unroll_);
    const std::string last = "q0 + " + std::to_string(static_cast<int64_t>(block_) * (unroll_ - 1));
    auto vectors_of_step = [&](bool partial) {
      auto loop = w.block("for (int u = 0; u < " + unroll + "; ++u)");
      w.line("const ", idx_, " q = q0 + u * ", block, ";");
      if (partial) w.line("if (q >= NV) break;");
      // A level deeper than `q`, as these kernels have always been laid
      // out: the same kernel keeps the same text.
      w.indent();
      w.insert(vector);
      w.dedent();
    };
    auto full = w.block("if (" + last + " < NV)");
    w.line("#pragma unroll");
    vectors_of_step(false);
    full.chain("else");
    vectors_of_step(true);
    shape_note_ = "pointwise, " + v + "-element vectors";
  }

  void emit_rows() {
    v_ = choose_vector_width();
    hinted_rows_ = true;
    const std::optional<int64_t> cs = static_c();
    int64_t team = 256;
    if (cs) {
      const int64_t vectors = (*cs + v_ - 1) / v_;
      if (vectors <= kWarpRowVectors) {
        team = kWarp;
      } else {
        // About two vectors per thread for 32-bit data, four for 16-bit
        // (8-element vectors), 64 to 512 threads. Measured on an H200 at
        // 16384x4096: f32 rmsnorm, one row a block, 512 threads of two
        // vectors 97.3% of copy, 256 of four 96.2%, 128 of eight 96.5%, 1024
        // of one 84% (its barrier waits on 32 warps); bf16 layernorm 92.5%
        // with 128 threads of four vectors, 89.8% with 256 of two. Rows too
        // long to keep in registers loop over the row: up to 1024 threads
        // of four vectors keep enough loads in flight there.
        team = 64;
        const int64_t per_thread = v_ >= 8 ? 4 : 2;
        while (team < 512 && team * per_thread < vectors) team *= 2;
        if ((vectors + team - 1) / team > kMaxChunks) {
          while (team < 1024 && team * 4 < vectors) team *= 2;
        }
      }
      const int64_t chunks = (vectors + team - 1) / team;
      if (chunks <= kMaxChunks && chunks * v_ <= kMaxCachedElements) chunks_ = chunks;
    }
    team_ = static_cast<int>(team);
    block_ = team_ == kWarp ? 256 : team_;
    const int rows_per_block = block_ / team_;

    CodeWriter rowbody;
    CodeWriter shared;  // the reductions' shared memory, declared before the loop over rows
    for (int32_t p = 0; p < group().num_loops; ++p) {
      for (int32_t id : group().nodes) {
        const auto u = static_cast<size_t>(id);
        if (schedule().role[u] == NodeRole::row_scalar && !ir::is_reduction(graph().node(id).op) &&
            schedule().phase[u] == p) {
          emit_row_scalar(id, rowbody, "lane == 0");
        }
      }
      emit_loop(p, rowbody, shared);
    }
    for (int32_t id : group().nodes) {
      const auto u = static_cast<size_t>(id);
      if (schedule().role[u] == NodeRole::row_scalar && !ir::is_reduction(graph().node(id).op) &&
          schedule().phase[u] >= group().num_loops) {
        emit_row_scalar(id, rowbody, "lane == 0");
      }
    }

    const SizeExpr rows = SizeExpr::product(bind_shape(group().outer, symbol_values()));
    launch.grid[0] =
        rows.ceil_div(SizeExpr::constant(rows_per_block)).min(SizeExpr::constant(kMaxGrid));

    CodeWriter& w = body_;
    const std::string owner = team_ == kWarp ? std::string("a warp")
                                             : "the block of " + std::to_string(team_) + " threads";
    const std::string kept =
        chunks_ > 0 ? ", the row kept in registers (" + std::to_string(chunks_) + " chunks)"
                    : std::string();
    w.line("// Rows: ", owner, " per row, ", std::to_string(v_), "-element vectors", kept, ".");
    w.line("const ", idx_, " C = ", dim(group().inner), ";");
    w.line("const ", idx_, " ROWS = ", prod(group().outer, 0, group().outer.size()), ";");
    const std::string team_size = std::to_string(team_);
    w.line("const int lane = threadIdx.x % ", team_size, ";");
    w.line("const int team = threadIdx.x / ", team_size, ";");
    w.insert(shared);
    if (need_row_policy_) w.line("const uint64_t kiln_policy = kiln_evict_last_policy();");
    const std::string rpb = std::to_string(rows_per_block);
    auto rows_loop = w.block("for (" + idx_ + " row = (" + idx_ + ")blockIdx.x * " + rpb +
                             " + team; row < ROWS; row += (" + idx_ + ")gridDim.x * " + rpb + ")");
    row_prelude(w);
    w.insert(row_decls_);
    w.insert(rowbody);
    if (team_ > kWarp) {
      // The reductions' shared memory is reused only by a next row.
      w.line("if (row + (", idx_, ")gridDim.x * ", rpb, " < ROWS) __syncthreads();");
    }
    shape_note_ = "rows, " + std::to_string(group().num_loops) + " loop(s) per row";
  }

  // Commutative, so lanes that combine the same two partials in either
  // order agree: fmaxf/fminf for floats (a NaN partial is dropped, as each
  // thread's accumulation drops NaN elements, like the C++ kernels).
  std::string combine(const Node& r, const std::string& a, const std::string& b) const {
    const CType t = acc_type(r, graph().node(r.inputs[0]));
    const bool fl = t == CType::f32 || t == CType::f64;
    const char* f = t == CType::f32 ? "f" : "";
    if (r.op == Op::reduce_max) {
      return fl ? std::string("fmax") + f + "(" + a + ", " + b + ")"
                : "(" + b + " > " + a + " ? " + b + " : " + a + ")";
    }
    if (r.op == Op::reduce_min) {
      return fl ? std::string("fmin") + f + "(" + a + ", " + b + ")"
                : "(" + b + " < " + a + " ? " + b + " : " + a + ")";
    }
    return "(" + a + " + " + b + ")";
  }

  void emit_loop(int32_t p, CodeWriter& w, CodeWriter& shared) {
    std::vector<int32_t> reds;
    for (int32_t id : group().nodes) {
      if (ir::is_reduction(graph().node(id).op) && schedule().phase[static_cast<size_t>(id)] == p)
        reds.push_back(id);
    }
    w.line("// Loop ", std::to_string(p), ".");
    std::map<int32_t, std::string> accs;
    for (int32_t r : reds) {
      const Node& n = graph().node(r);
      const CType t = acc_type(n, graph().node(n.inputs[0]));
      w.line(cname(t), " ", numbered("a", r), " = ", acc_init(n, t), ";");
      accs[r] = numbered("a", r);
    }
    const std::string v = std::to_string(v_);
    const std::string tv = std::to_string(static_cast<int64_t>(team_) * v_);
    if (chunks_ > 0) {
      const std::optional<int64_t> cs = static_c();
      const bool exact = *cs == chunks_ * team_ * v_;
      const std::string chunks = std::to_string(chunks_);
      w.line("#pragma unroll");
      auto chunk_loop = w.block("for (int k = 0; k < " + chunks + "; ++k)");
      w.line("[[maybe_unused]] const ", idx_, " c0 = ((", idx_, ")k * ", std::to_string(team_),
             " + lane) * ", v, ";");
      if (exact) {
        chunk(p, w, accs);
      } else {
        auto in_row = w.block("if (c0 < C)");
        chunk(p, w, accs);
      }
    } else {
      auto chunk_loop = w.block("for (" + idx_ + " c0 = (" + idx_ + ")lane * " + v +
                                "; c0 < C; c0 += " + tv + ")");
      chunk(p, w, accs);
    }
    for (int32_t r : reds) {
      const Node& n = graph().node(r);
      const CType t = acc_type(n, graph().node(n.inputs[0]));
      const std::string a = accs.at(r);
      // A shuffle tree over `lanes` lanes.
      auto butterfly = [&](int lanes) {
        const std::string half = std::to_string(lanes / 2);
        w.line("#pragma unroll");
        auto tree = w.block("for (int m = " + half + "; m > 0; m >>= 1)");
        w.line("const ", cname(t), " other = __shfl_xor_sync(0xffffffffu, ", a, ", m);");
        w.line(a, " = ", combine(n, a, "other"), ";");
      };
      butterfly(std::min(team_, kWarp));
      if (team_ > kWarp) {
        const std::string warps = std::to_string(team_ / kWarp);
        const std::string red = numbered("red", r);
        shared.line("__shared__ ", cname(t), " ", red, "[", warps, "];");
        w.line("if (lane % 32 == 0) ", red, "[lane / 32] = ", a, ";");
        w.line("__syncthreads();");
        // Every lane takes one warp's partial and a shuffle tree combines
        // them: no serial chain of shared-memory reads, and every lane ends
        // with the same value (combine() is commutative).
        w.line(a, " = ", red, "[lane % ", warps, "];");
        butterfly(team_ / kWarp);
      }
      std::string e = a;
      if (n.op == Op::reduce_mean) {
        const char* width = t == CType::f32   ? "(float)C"
                            : t == CType::f64 ? "(double)C"
                                              : "(int64_t)C";
        e = "(" + a + " / " + width + ")";
      }
      w.line(cname(ctype_of(n.dtype)), " ", numbered("v", r), " = ",
             finish(convert(e, t, ctype_of(n.dtype)), n.dtype), ";");
      store_row_scalar(r, w, "lane == 0");
    }
  }

 public:
  // ---- standalone reductions ------------------------------------------------------
  // The operand's dims merge into alternating kept and reduced runs
  // (GroupEmitter::reduce_segments). Three kernel shapes:
  //  - columns (the last run is kept): a thread per output, walking the
  //    reduced runs with their strides; neighbouring threads read
  //    neighbouring elements, so every load is coalesced;
  //  - rows (the last run is reduced): a block per output, its threads
  //    striding over the last run (and looping over the other reduced
  //    runs), then a shuffle tree and one shared-memory step;
  //  - split rows: when few outputs each reduce a long last run (a whole
  //    tensor, say), two launches: the first splits each output's last run
  //    over up to kSplitMax blocks, each writing a partial to a temp buffer
  //    (with its index for argmax); the second reduces an output's partials
  //    in one block and finishes it.

  // The block's (acc, idx) combined into thread 0's.
  void block_reduce(const Node& r, CType t, CodeWriter& w) {
    const bool arg = r.op == Op::argmax;
    const std::string T = cname(t);
    auto shuffle_down = [&](const std::string& from) {
      auto tree = w.block("for (int d = " + from + "; d > 0; d >>= 1)");
      w.line(T, " b = __shfl_down_sync(0xffffffffu, acc, d);");
      if (arg) w.line("int64_t bi = __shfl_down_sync(0xffffffffu, idx, d);");
      w.line(general_combine(r, t, "acc", "idx", "b", "bi"));
    };
    shuffle_down("16");
    {
      auto lead = w.block("if (threadIdx.x % 32 == 0)");
      w.line("red[threadIdx.x / 32] = acc;");
      if (arg) w.line("redi[threadIdx.x / 32] = idx;");
    }
    w.line("__syncthreads();");
    auto first_warp = w.block("if (threadIdx.x < 32)");
    const std::string warps = std::to_string(kReduceBlock / 32);
    w.line("acc = threadIdx.x < ", warps, " ? red[threadIdx.x] : ", general_acc_init(r, t), ";");
    if (arg) w.line("idx = threadIdx.x < ", warps, " ? redi[threadIdx.x] : INT64_MAX;");
    shuffle_down(std::to_string(kReduceBlock / 64));
  }

 private:
  void emit_reduction(CodeWriter& w) {
    const int32_t rid = group().reduction_of;
    const Node& r = graph().node(rid);
    const std::vector<ReduceSegment> segs = reduce_segments();
    const bool columns = !segs.back().reduced;
    const CType at = reduce_acc_type();
    const std::string T = cname(at);
    const bool arg = r.op == Op::argmax;
    idx_ = "int64_t";
    reduction_arguments();
    std::vector<size_t> kept;
    std::vector<size_t> red;
    for (size_t j = 0; j < segs.size(); ++j) {
      const std::string js = std::to_string(j);
      w.line("const int64_t E", js, " = ", segs[j].extent, ";  // ",
             segs[j].reduced ? "reduced" : "kept");
      w.line("const int64_t S", js, " = ", segs[j].stride, ";");
      (segs[j].reduced ? red : kept).push_back(j);
    }
    std::string count = "(int64_t)1";
    for (size_t j : red) count += " * E" + std::to_string(j);
    w.line("const int64_t count = ", count, ";  // values per output");
    std::string outputs = "(int64_t)1";
    for (size_t j : kept) outputs += " * E" + std::to_string(j);
    w.line("const int64_t outputs = ", outputs, ";");
    w.line("(void)count;");
    w.line("(void)outputs;");
    auto store_outputs = [&](const std::string& acc, const std::string& idx,
                             const std::string& where) {
      w.line(cname(ctype_of(r.dtype)), " y = ", general_finish(r, at, acc, idx, "count"), ";");
      for (int32_t slot : write_slots(rid)) w.line(store_stmt(r.dtype, slot, where, "y"));
    };
    // Combines the partials of an output (pass 2), partial p at `at_p`.
    auto combine_partials = [&](const std::string& loop, const std::string& at_p) {
      w.line(T, " acc = ", general_acc_init(r, at), ";");
      if (arg) w.line("int64_t idx = INT64_MAX;  // none yet");
      auto parts = w.block(loop);
      w.line(T, " b = ", numbered("b", part_slot(0)), "[", at_p, "];");
      if (arg) w.line("int64_t bi = ", numbered("b", part_slot(1)), "[", at_p, "];");
      w.line(general_combine(r, at, "acc", "idx", "b", "bi"));
    };
    auto parts_per_output = [&](const std::string& run, int64_t chunk, const char* layout) {
      const std::string c = std::to_string(chunk);
      const std::string most = std::to_string(kSplitMax);
      w.line("// Partials per output (the plan's temp holds ", layout, ").");
      w.line("const int64_t parts = (E", run, " + ", c, " - 1) / ", c, " < ", most, " ? (E", run,
             " + ", c, " - 1) / ", c, " : ", most, ";");
    };
    if (columns) {
      block_ = kPointwiseBlock;
      const size_t last = segs.size() - 1;
      const std::string ls = std::to_string(last);
      const std::string r0 = std::to_string(red.front());
      const SizeExpr n_out =
          SizeExpr::product(bind_shape(graph().node(rid).shape, symbol_values()));
      launch.grid[0] = n_out.ceil_div(SizeExpr::constant(block_)).min(SizeExpr::constant(kMaxGrid));
      if (pass() != 0) parts_per_output(r0, kColumnChunk, "parts * outputs");
      const std::string loop =
          "for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < outputs;"
          " i += (int64_t)gridDim.x * blockDim.x)";
      if (pass() == 2) {
        w.line("// Split columns, second pass: a thread per output over its partials.");
        {
          auto outputs_loop = w.block(loop);
          combine_partials("for (int64_t p = 0; p < parts; ++p)", "p * outputs + i");
          store_outputs("acc", "idx", "i");
        }
        shape_note_ = "split columns, second pass: a thread per output over its partials";
        return;
      }
      w.line(pass() == 1 ? "// Split columns, first pass: blocks (x, y) take every parts-th value "
                           "of the first reduced run from y."
                         : "// Columns: a thread per output; threads of a warp read neighbouring "
                           "elements.");
      auto outputs_loop = w.block(loop);
      w.line("int64_t t = i / E", ls, ";");
      decompose_kept(kept, kept.size() - 1, w);
      w.line("base += i % E", ls, ";");
      w.line(T, " acc = ", general_acc_init(r, at), ";");
      // A part's first value is its best so far whatever it is (argmax).
      if (arg) w.line(pass() == 1 ? "int64_t idx = INT64_MAX;  // none yet" : "int64_t idx = 0;");
      const std::string pos = arg ? "r" + r0 : "0";
      nest_reduced(
          red, w,
          [&](const std::string& off) {
            const std::string v = reduction_operand_at(off, at, w);
            w.line(T, " v = ", v, ";");
            w.line(general_accumulate(r, at, "acc", "idx", "v", pos, pass() == 1 && arg));
          },
          pass() == 1 ? "blockIdx.y" : "0", pass() == 1 ? "parts" : "");
      if (pass() == 1) {
        w.line(numbered("b", part_slot(0)), "[blockIdx.y * outputs + i] = acc;");
        if (arg) w.line(numbered("b", part_slot(1)), "[blockIdx.y * outputs + i] = idx;");
        launch.grid[1] = split_parts();
        shape_note_ = "split columns, first pass: partials to a temp buffer";
      } else {
        store_outputs("acc", "idx", "i");
        shape_note_ = "columns, a thread per output";
      }
      return;
    }
    // Rows.
    block_ = kReduceBlock;
    const size_t last = segs.size() - 1;
    const std::string ls = std::to_string(last);
    std::vector<size_t> outer_red(red.begin(), red.end() - 1);
    const SizeExpr n_out = SizeExpr::product(bind_shape(graph().node(rid).shape, symbol_values()));
    const std::string warps = std::to_string(kReduceBlock / 32);
    w.line("__shared__ ", T, " red[", warps, "];");
    if (arg) w.line("__shared__ int64_t redi[", warps, "];");
    if (pass() != 0) parts_per_output(ls, kSplitChunk, "outputs * parts");
    const std::string block_per_output =
        "for (int64_t i = blockIdx.x; i < outputs; i += gridDim.x)";
    if (pass() == 2) {
      w.line("// Split rows, second pass: a block per output reduces its partials.");
      {
        auto outputs_loop = w.block(block_per_output);
        combine_partials("for (int64_t p = threadIdx.x; p < parts; p += blockDim.x)",
                         "i * parts + p");
        block_reduce(r, at, w);
        {
          auto first = w.block("if (threadIdx.x == 0)");
          store_outputs("acc", "idx", "i");
        }
        w.line("__syncthreads();");
      }
      launch.grid[0] = n_out.min(SizeExpr::constant(kMaxGrid));
      shape_note_ = "split rows, second pass: a block per output over its partials";
      return;
    }
    w.line(pass() == 1
               ? "// Split rows, first pass: block (x, y) reduces part y of output x's last run."
               : "// Rows: a block per output; its threads stride over the last reduced run.");
    {
      auto outputs_loop = w.block(block_per_output);
      w.line("int64_t t = i;");
      decompose_kept(kept, kept.size(), w);
      w.line(T, " acc = ", general_acc_init(r, at), ";");
      // The first value a thread sees is its best so far, whatever it is.
      if (arg) w.line("int64_t idx = INT64_MAX;  // none yet");
      // The first pass interleaves: block y of an output reads elements
      // y * blockDim + k, stepping by parts * blockDim (no division).
      const std::string c_begin = pass() == 1 ? "(int64_t)blockIdx.y * blockDim.x" : "0";
      const std::string c_step = pass() == 1 ? "parts * blockDim.x" : "blockDim.x";
      // A last run shorter than the block (with other reduced runs around it,
      // as sum over {0, 2} of [n, 6, 5]) would leave most threads idle: the
      // threads then stride over the first outer reduced run instead, each
      // walking whole last runs.
      const SizeExpr last_extent = SizeExpr::product(bind_shape(segs.back().dims, symbol_values()));
      const bool thread_outer = pass() == 0 && !outer_red.empty() && last_extent.is_constant() &&
                                last_extent.evaluate({}) < kReduceBlock;
      if (thread_outer) {
        w.line("// Threads stride over the first outer reduced run; the last run is short.");
      }
      nest_reduced(
          outer_red, w,
          [&](const std::string& off) {
            auto loop =
                w.block(thread_outer ? "for (int64_t c = 0; c < E" + ls + "; ++c)"
                                     : "for (int64_t c = " + c_begin + " + threadIdx.x; c < E" +
                                           ls + "; c += " + c_step + ")");
            const std::string v = reduction_operand_at(off + " + c", at, w);
            w.line(T, " v = ", v, ";");
            w.line(general_accumulate(r, at, "acc", "idx", "v", "c", arg));
          },
          thread_outer ? "(int64_t)threadIdx.x" : "0", thread_outer ? "blockDim.x" : "");
      block_reduce(r, at, w);
      {
        auto first = w.block("if (threadIdx.x == 0)");
        if (pass() == 1) {
          w.line(numbered("b", part_slot(0)), "[i * parts + blockIdx.y] = acc;");
          if (arg) w.line(numbered("b", part_slot(1)), "[i * parts + blockIdx.y] = idx;");
        } else {
          store_outputs("acc", "idx", "i");
        }
      }
      w.line("__syncthreads();");
    }
    launch.grid[0] = n_out.min(SizeExpr::constant(kMaxGrid));
    if (pass() == 1) {
      launch.grid[1] = split_parts();
      shape_note_ = "split rows, first pass: partials to a temp buffer";
    } else {
      shape_note_ = "rows, a block per output";
    }
  }

  // ---- assembly -----------------------------------------------------------------
  void assemble() {
    CodeWriter w;
    kernel_comment(w, "CUDA kernel", shape_note_);
    if (nvrtc_) {
      w.raw(cuda_detail::kNvrtcPrelude);
      w.line();
    } else {
      w.line("#include <stdint.h>");
      w.line("#include <string.h>");
      w.line("#include <math.h>");
      w.line();
    }
    static const std::pair<unsigned, std::string_view> kHelpers[] = {
        {kHelperTanh, kHelperTanhText},
        {kHelperGelu, kHelperGeluText},
        {kHelperIntDiv, kHelperIntDivText},
        {kHelperIntPow, kHelperIntPowText}};
    if (helpers() & kHelperBits) w.raw(cuda_detail::kBitsText);
    if (helpers() & kHelperBf16) w.raw(cuda_detail::kBf16Text);
    if (helpers() & kHelperF16) w.raw(cuda_detail::kF16Text);
    if (helpers() & kHelperGelu) w.raw(cuda_detail::kGeluDivText);
    if (helpers() & kHelperGeluF16) w.raw(gelu_narrow_device_text(kGeluF16Fit));
    if (helpers() & kHelperGeluBf16) w.raw(gelu_narrow_device_text(kGeluBf16Fit));
    for (const auto& [bit, text] : kHelpers) {
      if (helpers() & bit) w.raw(kDeviceHelperSpecifiers).raw(text);
    }
    if (need_vectors_) w.raw(cuda_detail::kVectorMovesText);
    if (need_row_policy_) w.raw(cuda_detail::kRowLoadsText);
    if (need_vectors_ && stream_stores_) w.raw(cuda_detail::kStreamStoresText);
    w.line();
    const std::string min_blocks = min_blocks_ > 0 ? ", " + std::to_string(min_blocks_) : "";
    w.line("extern \"C\" __global__ void __launch_bounds__(", std::to_string(block_), min_blocks,
           ") ", entry(), "(");
    std::vector<std::string> params;
    const std::vector<Argument> args = arguments();
    for (size_t slot = 0; slot < args.size(); ++slot) {
      const Argument& a = args[slot];
      params.push_back(std::string(a.writable ? "" : "const ") + storage(a.dtype) +
                       "* __restrict__ " + numbered("b", slot) + ",  // " + a.note);
    }
    for (size_t sym = 0; sym < graph().symbols.size(); ++sym) {
      params.push_back(std::string("const int64_t ") + numbered("s", sym) + ",  // " +
                       graph().symbols[sym].name);
    }
    // The parameters two levels in, the body one; without parameters,
    // `void` ahead of the closing parenthesis.
    if (!params.empty()) {
      // No comma after the last parameter: cut it from before its comment.
      std::string& last = params.back();
      last.erase(last.rfind(",  // "), 1);
      w.indent();
      w.indent();
      for (const auto& p : params) w.line(p);
      w.dedent();
      w.dedent();
    }
    {
      auto kernel = w.block(params.empty() ? "    void)" : ")");
      for (const auto& [id, text] : constants()) w.line(text);
      w.insert(body_);
    }
    set_source(w.text());
    launch.block = {static_cast<uint32_t>(block_), 1, 1};
  }

  bool aligned16_;
  bool index32_;
  bool nvrtc_;
  std::string idx_ = "int64_t";
  int64_t v_ = 1;
  int unroll_ = 1;
  bool columns_ = false;   // emit_columns(): loads of row-invariant vectors are hoisted
  CodeWriter column_pre_;  // those loads
  int64_t chunks_ = 0;     // > 0: the row is kept in registers in this many chunks per thread
  int team_ = kWarp;
  int block_ = kPointwiseBlock;
  bool need_vectors_ = false;
  int min_blocks_ = 0;                         // > 0: __launch_bounds__'s blocks per SM
  bool hinted_rows_ = false;                   // emit_rows(): rows load through kiln_vload_rows
  bool stream_stores_ = false;                 // emit_columns(): stores are streaming (.cs)
  bool need_row_policy_ = false;               // a load reads kiln_policy
  std::map<std::string, std::string> cached_;  // key -> register array of the row
  struct VectorRead {
    int32_t op;
    bool plus1;
  };
  std::map<std::string, std::set<int32_t>> vector_phases_;
  std::map<std::string, VectorRead> vector_reads_;
  std::set<std::string> kept_;
  std::vector<std::pair<int32_t, bool>> prefetch_;
  CodeWriter row_decls_;  // the row's register arrays (cached_), declared in the loop over rows
  std::string shape_note_;
  CodeWriter body_;  // the kernel function's body
};

}  // namespace

namespace {

// A matmul group as one cuBLASLt call: no kernel of ours, its epilogue in
// cuBLASLt's (docs/cuda.md).
CudaLaunch gemm_launch(const Graph& g, const Schedule& s, const BufferMap& bm, int32_t gi,
                       const ir::SymbolValues& static_values) {
  const MatmulPlan p = plan_matmul(g, s, gi, static_values);
  GemmLaunch gemm;
  gemm.a_dtype = p.dtype;
  gemm.b_dtype = p.dtype;
  gemm.d_dtype = p.dtype;
  gemm.m = p.m;
  gemm.n = p.n;
  gemm.k = p.k;
  gemm.batch = p.batch;
  gemm.trans_a = p.trans_a;
  gemm.trans_b = p.trans_b;
  gemm.lda = p.lda;
  gemm.ldb = p.ldb;
  gemm.stride_a = p.stride_a;
  gemm.stride_b = p.stride_b;
  gemm.alpha = p.alpha;
  gemm.epilogue = p.bias >= 0 ? (p.relu ? GemmEpilogue::bias_relu : GemmEpilogue::bias)
                              : (p.relu ? GemmEpilogue::relu : GemmEpilogue::none);
  CudaLaunch launch;
  launch.kernel = kNoKernel;
  auto read = [&](int32_t node) {
    const int32_t b = bm.read_buffer[static_cast<size_t>(node)];
    if (b < 0) throw std::logic_error("kiln codegen: matmul operand has no buffer");
    launch.buffers.push_back(static_cast<uint32_t>(b));
  };
  read(p.a);
  read(p.b);
  // cuBLASLt writes one D; a node written to several buffers (an output
  // returned twice, say) is the rare case a copy kernel would serve.
  const auto& writes = bm.write_buffers[static_cast<size_t>(p.out)];
  if (writes.size() != 1) {
    throw std::logic_error("kiln codegen: a matmul result written to " +
                           std::to_string(writes.size()) + " buffers");
  }
  launch.buffers.push_back(writes.front());
  if (p.bias >= 0) read(p.bias);
  launch.gemm = std::move(gemm);
  return launch;
}

}  // namespace

CudaLoweredGraph lower_cuda(const ir::Graph& g, const ir::SymbolValues& static_values,
                            const CudaCodegenOptions& options) {
  const Schedule s = schedule_graph(g);
  const BufferMap bm = plan_buffers(g, s, static_values);
  CudaLoweredGraph out;
  out.buffers = bm.buffers;
  uint32_t temps = 0;
  for (const PlanBuffer& b : out.buffers) temps += b.role == BufferRole::temp ? 1 : 0;
  for (size_t gi = 0; gi < s.groups.size(); ++gi) {
    const std::string entry = options.entry_prefix + "_k" + std::to_string(gi);
    if (s.groups[gi].matmul_of >= 0) {
      out.launches.push_back(gemm_launch(g, s, bm, static_cast<int32_t>(gi), static_values));
      continue;
    }
    if (s.groups[gi].reduction_of >= 0) {
      CudaKernelEmitter planner(g, s, bm, static_cast<int32_t>(gi), static_values, entry,
                                options.aligned16, options.index32, options.nvrtc);
      const auto plan = planner.plan_split();
      std::vector<uint32_t> partials;
      if (plan.split) {
        const ir::Node& r = g.node(s.groups[gi].reduction_of);
        const DType pd = partial_dtype(planner.reduce_acc_type());
        const SizeExpr numel = plan.outputs * plan.parts;
        partials.push_back(static_cast<uint32_t>(out.buffers.size()));
        out.buffers.push_back({BufferRole::temp, temps++, pd, numel});
        if (r.op == Op::argmax) {
          partials.push_back(static_cast<uint32_t>(out.buffers.size()));
          out.buffers.push_back({BufferRole::temp, temps++, DType::i64, numel});
        }
      }
      for (int pass : plan.split ? std::vector<int>{1, 2} : std::vector<int>{0}) {
        const std::string name = pass == 2 ? entry + "_final" : entry;
        CudaKernelEmitter e(g, s, bm, static_cast<int32_t>(gi), static_values, name,
                            options.aligned16, options.index32, options.nvrtc);
        e.set_pass(pass, partials);
        e.set_split_parts(plan.parts);
        e.run();
        CudaLaunch launch = e.launch;
        launch.kernel = static_cast<uint32_t>(out.kernels.size());
        launch.buffers = e.arg_buffers();
        out.kernels.push_back(CudaKernel{name, e.take_source()});
        out.launches.push_back(std::move(launch));
      }
      continue;
    }
    CudaKernelEmitter probe(g, s, bm, static_cast<int32_t>(gi), static_values, entry,
                            options.aligned16, options.index32, options.nvrtc);
    probe.run();
    CudaKernelEmitter e(g, s, bm, static_cast<int32_t>(gi), static_values, entry, options.aligned16,
                        options.index32, options.nvrtc);
    std::set<std::string> kept = probe.reread_vectors();
    const auto late = probe.late_vectors();
    for (const auto& [key, read] : probe.vector_keys()) {
      for (const auto& l : late) {
        if (l.first == read.first) kept.insert(key);
      }
    }
    e.keep_in_registers(std::move(kept));
    e.prefetch(late);
    e.run();
    out.vectorized = out.vectorized || e.vectorized();
    CudaLaunch launch = e.launch;
    launch.kernel = static_cast<uint32_t>(out.kernels.size());
    out.kernels.push_back(CudaKernel{entry, e.take_source()});
    launch.buffers = e.arg_buffers();
    out.launches.push_back(std::move(launch));
  }
  return out;
}

std::vector<std::string> cuda_compile_flags(const std::string& arch) {
  const bool ok =
      arch.size() >= 5 && arch.size() <= 6 && arch.rfind("sm_", 0) == 0 &&
      std::all_of(arch.begin() + 3, arch.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!ok) throw std::invalid_argument("kiln: unknown CUDA arch '" + arch + "' (expected sm_<NN>)");
  // No --use_fast_math: results are checked against the interpreter with the
  // same tolerances as the CPU kernels.
  return {"-O3", "-std=c++17", "-arch=" + arch};
}

}  // namespace kiln::compiler
