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
#include <vector>

#include "cpu_codegen_support.h"
#include "kiln/compiler/interpreter.h"
#include "kiln/compiler/schedule.h"

namespace kiln::compiler {
namespace {

using namespace cpu_detail;  // NOLINT(google-build-using-namespace)
using ir::Dim;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

// The C type a value is computed in.
enum class CType : uint8_t { f32, f64, i64, b };

CType ctype_of(DType t) {
  switch (t) {
    case DType::f32:
    case DType::f16:
    case DType::bf16:
      return CType::f32;
    case DType::f64:
      return CType::f64;
    case DType::i32:
    case DType::i64:
      return CType::i64;
    case DType::boolean:
      return CType::b;
  }
  return CType::f32;
}

const char* cname(CType t) {
  switch (t) {
    case CType::f32:
      return "float";
    case CType::f64:
      return "double";
    case CType::i64:
      return "int64_t";
    case CType::b:
      return "bool";
  }
  return "?";
}

const char* storage_name(DType t) {
  switch (t) {
    case DType::f32:
      return "float";
    case DType::f16:
    case DType::bf16:
      return "uint16_t";
    case DType::f64:
      return "double";
    case DType::i32:
      return "int32_t";
    case DType::i64:
      return "int64_t";
    case DType::boolean:
      return "uint8_t";
  }
  return "?";
}

bool is_leaf(const Node& n) { return n.op == Op::input || n.op == Op::constant; }

std::string convert(const std::string& e, CType from, CType to) {
  if (from == to) return e;
  if (to == CType::b) return "(" + e + " != 0)";
  if (from == CType::b) {
    switch (to) {
      case CType::f32:
        return "(" + e + " ? 1.0f : 0.0f)";
      case CType::f64:
        return "(" + e + " ? 1.0 : 0.0)";
      default:
        return "(int64_t)(" + e + ")";
    }
  }
  return std::string("(") + cname(to) + ")(" + e + ")";
}

std::string float_literal(double v, CType t) {
  if (std::isnan(v)) return "NAN";
  if (std::isinf(v)) return v > 0 ? "INFINITY" : "(-INFINITY)";
  char buf[64];
  std::snprintf(buf, sizeof buf, t == CType::f32 ? "%.9g" : "%.17g", v);
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  if (t == CType::f32) s += "f";
  if (s[0] == '-') s = "(" + s + ")";
  return s;
}

std::string literal(double v, DType dtype) {
  const CType t = ctype_of(dtype);
  switch (t) {
    case CType::f32:
    case CType::f64:
      return float_literal(round_to_dtype(v, dtype), t);
    case CType::i64: {
      const double r = round_to_dtype(v, dtype);
      if (r <= -9.2e18 || r >= 9.2e18) return r < 0 ? "INT64_MIN" : "INT64_MAX";
      return "INT64_C(" + std::to_string(static_cast<int64_t>(r)) + ")";
    }
    case CType::b:
      return v != 0 ? "true" : "false";
  }
  return "0";
}

Shape pad_left(const Shape& s, size_t rank) {
  if (s.size() >= rank) return s;
  Shape out(rank - s.size(), Dim::constant(1));
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

// Strips leading ones (for comparing shapes that broadcast to the same numel).
Shape strip_leading_ones(const Shape& s) {
  size_t i = 0;
  while (i < s.size() && s[i].is_one()) ++i;
  return Shape(s.begin() + static_cast<std::ptrdiff_t>(i), s.end());
}

bool all_ones(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](const Dim& d) { return d.is_one(); });
}

// Where each node lives in the plan.
struct BufferMap {
  std::vector<PlanBuffer> buffers;
  std::vector<int32_t> read_buffer;                  // per node: plan buffer to read it from, or -1
  std::vector<std::vector<uint32_t>> write_buffers;  // per node: plan buffers it is written to
};

BufferMap plan_buffers(const Graph& g, const Schedule& s, const ir::SymbolValues& sv) {
  BufferMap m;
  m.read_buffer.assign(g.nodes.size(), -1);
  m.write_buffers.resize(g.nodes.size());
  auto numel = [&](const Shape& sh) { return SizeExpr::product(bind_shape(sh, sv)); };
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const Node& n = g.node(g.inputs[i]);
    m.read_buffer[static_cast<size_t>(g.inputs[i])] = static_cast<int32_t>(m.buffers.size());
    m.buffers.push_back({BufferRole::input, static_cast<uint32_t>(i), n.dtype, numel(n.shape)});
  }
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    const int32_t o = g.outputs[k];
    const Node& n = g.node(o);
    const auto b = static_cast<uint32_t>(m.buffers.size());
    if (!is_leaf(n) && m.read_buffer[static_cast<size_t>(o)] < 0) {
      m.read_buffer[static_cast<size_t>(o)] = static_cast<int32_t>(b);
    }
    m.write_buffers[static_cast<size_t>(o)].push_back(b);
    m.buffers.push_back({BufferRole::output, static_cast<uint32_t>(k), n.dtype, numel(n.shape)});
  }
  uint32_t temps = 0;
  for (size_t id = 0; id < g.nodes.size(); ++id) {
    if (!s.materialized[id] || !m.write_buffers[id].empty()) continue;
    const Node& n = g.nodes[id];
    const auto b = static_cast<uint32_t>(m.buffers.size());
    m.read_buffer[id] = static_cast<int32_t>(b);
    m.write_buffers[id].push_back(b);
    m.buffers.push_back({BufferRole::temp, temps++, n.dtype, numel(n.shape)});
  }
  return m;
}

class KernelEmitter {
 public:
  KernelEmitter(const Graph& g, const Schedule& s, const BufferMap& bm, int32_t gi,
                const ir::SymbolValues& sv, std::string entry)
      : g_(g),
        s_(s),
        bm_(bm),
        gi_(gi),
        G_(s.groups[static_cast<size_t>(gi)]),
        sv_(sv),
        entry_(std::move(entry)) {}

  void run() {
    collect_arguments();
    if (G_.copy_of >= 0) {
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

  std::string source;
  std::vector<uint32_t> arg_buffers;
  SizeExpr work_items = SizeExpr::constant(1);
  SizeExpr item_cost = SizeExpr::constant(1);

 private:
  // ---- dims ---------------------------------------------------------------
  std::string dim(const Dim& d) {
    if (d.is_constant()) return std::to_string(d.value);
    const auto s = static_cast<size_t>(d.sym);
    if (s < sv_.size() && sv_[s] >= 0) return std::to_string(sv_[s]);
    used_syms_.insert(d.sym);
    return "s" + std::to_string(d.sym);
  }

  // Product of dims [b, e) as C++ text, constants folded.
  std::string prod(const Shape& sh, size_t b, size_t e) {
    int64_t c = 1;
    std::vector<std::string> terms;
    for (size_t i = b; i < e && i < sh.size(); ++i) {
      const std::string t = dim(sh[i]);
      if (t[0] == 's') {
        terms.push_back(t);
      } else {
        c *= std::stoll(t);
      }
    }
    if (terms.empty()) return std::to_string(c);
    std::string out;
    for (const auto& t : terms) out += (out.empty() ? "" : " * ") + t;
    if (c != 1) out += " * " + std::to_string(c);
    return out;
  }

  // ---- arguments ------------------------------------------------------------
  void collect_arguments() {
    std::set<int32_t> reads;
    std::function<void(int32_t)> note_read = [&](int32_t op) {
      if (g_.node(op).op == Op::constant) return;
      if (s_.group_of[static_cast<size_t>(op)] == gi_) return;
      if (recomputed_here(op)) {
        for (int32_t child : g_.node(op).inputs) note_read(child);
        return;
      }
      reads.insert(op);
    };
    if (G_.copy_of >= 0) {
      note_read(G_.copy_of);
    } else {
      for (int32_t id : G_.nodes) {
        for (int32_t op : g_.node(id).inputs) note_read(op);
      }
    }
    for (int32_t r : reads) {
      const int32_t b = bm_.read_buffer[static_cast<size_t>(r)];
      if (b < 0)
        throw std::logic_error("kiln codegen: node " + std::to_string(r) + " has no buffer");
      read_slot_[r] = static_cast<int32_t>(arg_buffers.size());
      arg_buffers.push_back(static_cast<uint32_t>(b));
    }
    std::vector<int32_t> writers;
    if (G_.copy_of >= 0) {
      writers.push_back(G_.copy_of);
    } else {
      for (int32_t id : G_.nodes) {
        if (s_.materialized[static_cast<size_t>(id)]) writers.push_back(id);
      }
      std::sort(writers.begin(), writers.end());
    }
    for (int32_t w : writers) {
      for (uint32_t b : bm_.write_buffers[static_cast<size_t>(w)]) {
        write_slots_[w].push_back(static_cast<int32_t>(arg_buffers.size()));
        arg_buffers.push_back(b);
      }
    }
  }

  // ---- values ---------------------------------------------------------------
  std::string load_expr(DType t, int32_t slot, const std::string& idx) {
    std::string p = "b" + std::to_string(slot) + "[" + idx + "]";
    switch (t) {
      case DType::f32:
      case DType::f64:
      case DType::i64:
        return p;
      case DType::i32:
        return "(int64_t)" + p;
      case DType::bf16:
        helpers_ |= kHelperBits | kHelperBf16;
        return "kiln_bf16_to_f32(" + p + ")";
      case DType::f16:
        helpers_ |= kHelperBits | kHelperF16;
        return "kiln_f16_to_f32(" + p + ")";
      case DType::boolean:
        return "(" + p + " != 0)";
    }
    return p;
  }

  std::string store_stmt(DType t, int32_t slot, const std::string& idx, const std::string& v) {
    const std::string p = "b" + std::to_string(slot) + "[" + idx + "] = ";
    switch (t) {
      case DType::f32:
      case DType::f64:
      case DType::i64:
        return p + v + ";";
      case DType::i32:
        return p + "(int32_t)" + v + ";";
      case DType::bf16:
        helpers_ |= kHelperBits | kHelperBf16;
        return p + "kiln_f32_to_bf16(" + v + ");";
      case DType::f16:
        helpers_ |= kHelperBits | kHelperF16;
        return p + "kiln_f32_to_f16(" + v + ");";
      case DType::boolean:
        return p + "(uint8_t)" + v + ";";
    }
    return p + v + ";";
  }

  // Rounds a freshly computed value to its node's dtype.
  std::string finish(const std::string& e, DType t) {
    switch (t) {
      case DType::i32:
        return "(int64_t)(int32_t)(" + e + ")";
      case DType::bf16:
        helpers_ |= kHelperBits | kHelperBf16;
        return "kiln_round_bf16(" + e + ")";
      case DType::f16:
        helpers_ |= kHelperBits | kHelperF16;
        return "kiln_round_f16(" + e + ")";
      default:
        return e;
    }
  }

  std::string constant_ref(int32_t id) {
    const Node& n = g_.node(id);
    if (!constants_.count(id)) {
      constants_[id] = std::string("const ") + cname(ctype_of(n.dtype)) + " k" +
                       std::to_string(id) + " = " + literal(n.scalar, n.dtype) + ";";
    }
    return "k" + std::to_string(id);
  }

  // The expression computing node n from operand expressions (already in
  // each operand's compute type), converted to n's compute type.
  std::string op_expr(const Node& n, const std::vector<std::string>& args) {
    const CType rt = ctype_of(n.dtype);
    std::vector<CType> at;
    for (int32_t op : n.inputs) at.push_back(ctype_of(g_.node(op).dtype));
    auto arg = [&](size_t k, CType to) { return convert(args[k], at[k], to); };
    // Arithmetic on bool computes in int64.
    const CType ar = rt == CType::b ? CType::i64 : rt;
    const bool f = ar == CType::f32;
    const bool fl = ar == CType::f32 || ar == CType::f64;
    std::string e;
    auto math1 = [&](const char* name) {
      // Float math: f32 or f64; integer operands compute through double.
      if (ar == CType::f32) return std::string(name) + "f(" + arg(0, CType::f32) + ")";
      if (ar == CType::f64) return std::string(name) + "(" + arg(0, CType::f64) + ")";
      return convert(std::string(name) + "(" + arg(0, CType::f64) + ")", CType::f64, ar);
    };
    switch (n.op) {
      case Op::neg:
        e = fl ? "(-" + arg(0, ar) + ")" : "(int64_t)(0ull - (uint64_t)" + arg(0, ar) + ")";
        break;
      case Op::abs:
        if (fl) {
          e = std::string(f ? "fabsf(" : "fabs(") + arg(0, ar) + ")";
        } else {
          const std::string a = arg(0, ar);
          e = "(" + a + " < 0 ? (int64_t)(0ull - (uint64_t)" + a + ") : " + a + ")";
        }
        break;
      case Op::exp:
        e = math1("exp");
        break;
      case Op::log:
        e = math1("log");
        break;
      case Op::sin:
        e = math1("sin");
        break;
      case Op::cos:
        e = math1("cos");
        break;
      case Op::sqrt:
        e = math1("sqrt");
        break;
      case Op::tanh:
        if (ar == CType::f32) {
          helpers_ |= kHelperTanh;
          e = "kiln_tanhf(" + arg(0, CType::f32) + ")";
        } else {
          e = math1("tanh");
        }
        break;
      case Op::sigmoid:
        if (ar == CType::f32) {
          e = "(1.0f / (1.0f + expf(-" + arg(0, CType::f32) + ")))";
        } else {
          e = convert("(1.0 / (1.0 + exp(-" + arg(0, CType::f64) + ")))", CType::f64, ar);
        }
        break;
      case Op::gelu:
        if (ar == CType::f32) {
          helpers_ |= kHelperGelu;
          e = "kiln_gelu_f32(" + arg(0, CType::f32) + ")";
        } else {
          const std::string a = arg(0, CType::f64);
          e = convert("(0.5 * " + a + " * (1.0 + erf(" + a + " * 0.70710678118654752440)))",
                      CType::f64, ar);
        }
        break;
      case Op::rsqrt:
        if (ar == CType::f32) {
          e = "(1.0f / sqrtf(" + arg(0, CType::f32) + "))";
        } else {
          e = convert("(1.0 / sqrt(" + arg(0, CType::f64) + "))", CType::f64, ar);
        }
        break;
      case Op::relu: {
        const std::string a = arg(0, ar);
        e = "(" + a + " > 0 ? " + a + " : " + (f ? "0.0f" : fl ? "0.0" : "INT64_C(0)") + ")";
        break;
      }
      case Op::square: {
        const std::string a = arg(0, ar);
        e = fl ? "(" + a + " * " + a + ")" : "(int64_t)((uint64_t)" + a + " * (uint64_t)" + a + ")";
        break;
      }
      case Op::logical_not:
        e = "(!" + arg(0, CType::b) + ")";
        break;
      case Op::cast:
        e = args[0];
        break;  // converted below
      case Op::add:
      case Op::sub:
      case Op::mul: {
        const char* sym = n.op == Op::add ? " + " : n.op == Op::sub ? " - " : " * ";
        if (fl) {
          e = "(" + arg(0, ar) + sym + arg(1, ar) + ")";
        } else {
          e = "(int64_t)((uint64_t)" + arg(0, ar) + sym + "(uint64_t)" + arg(1, ar) + ")";
        }
        break;
      }
      case Op::div:
        if (fl) {
          e = "(" + arg(0, ar) + " / " + arg(1, ar) + ")";
        } else {
          helpers_ |= kHelperIntDiv;
          e = "kiln_idiv(" + arg(0, ar) + ", " + arg(1, ar) + ")";
        }
        break;
      case Op::maximum:
      case Op::minimum: {
        // NaN-propagating, as the interpreter (and torch.maximum).
        const std::string a = arg(0, ar);
        const std::string b = arg(1, ar);
        const char* cmp = n.op == Op::maximum ? " > " : " < ";
        e = fl ? "((" + a + cmp + b + " || " + a + " != " + a + ") ? " + a + " : " + b + ")"
               : "(" + a + cmp + b + " ? " + a + " : " + b + ")";
        break;
      }
      case Op::pow:
        if (ar == CType::f32) {
          e = "powf(" + arg(0, ar) + ", " + arg(1, ar) + ")";
        } else if (ar == CType::f64) {
          e = "pow(" + arg(0, ar) + ", " + arg(1, ar) + ")";
        } else {
          helpers_ |= kHelperIntPow;
          e = "kiln_ipow(" + arg(0, ar) + ", " + arg(1, ar) + ")";
        }
        break;
      case Op::eq:
      case Op::ne:
      case Op::lt:
      case Op::le:
      case Op::gt:
      case Op::ge: {
        // Compare in a type that holds both operands exactly.
        CType ct;
        if (at[0] == at[1]) {
          ct = at[0];
        } else if (at[0] == CType::f64 || at[1] == CType::f64) {
          ct = CType::f64;
        } else if (at[0] == CType::f32 || at[1] == CType::f32) {
          ct = (at[0] == CType::i64 || at[1] == CType::i64) ? CType::f64 : CType::f32;
        } else {
          ct = CType::i64;
        }
        const char* sym = n.op == Op::eq   ? " == "
                          : n.op == Op::ne ? " != "
                          : n.op == Op::lt ? " < "
                          : n.op == Op::le ? " <= "
                          : n.op == Op::gt ? " > "
                                           : " >= ";
        e = "(" + arg(0, ct) + sym + arg(1, ct) + ")";
        return convert(e, CType::b, rt);
      }
      case Op::where:
        e = "(" + arg(0, CType::b) + " ? " + arg(1, ar) + " : " + arg(2, ar) + ")";
        break;
      default:
        throw std::logic_error("kiln codegen: unexpected op " + std::string(ir::op_name(n.op)));
    }
    if (n.op == Op::cast) return convert(e, at[0], rt);
    return convert(e, ar, rt);
  }

  // ---- flat kernels -----------------------------------------------------------
  // An operand computed inline from graph inputs rather than read from a buffer.
  bool recomputed_here(int32_t op) const {
    const auto u = static_cast<size_t>(op);
    return s_.group_of[u] != gi_ && s_.inlinable[u] && !is_leaf(g_.node(op));
  }

  // Whether every buffer the node reads (through inline cones) is either the
  // full domain or a single element.
  bool flat_operand(int32_t op, const Shape& full) const {
    const Node& m = g_.node(op);
    if (m.op == Op::constant || s_.group_of[static_cast<size_t>(op)] == gi_) return true;
    if (recomputed_here(op)) {
      return std::all_of(m.inputs.begin(), m.inputs.end(),
                         [&](int32_t c) { return flat_operand(c, full); });
    }
    return all_ones(m.shape) || strip_leading_ones(m.shape) == full;
  }

  bool is_flat() const {
    if (G_.has_reduction) return false;
    const Shape full = strip_leading_ones(G_.domain());
    for (int32_t id : G_.nodes) {
      if (s_.role[static_cast<size_t>(id)] != NodeRole::row_vector) return false;
      for (int32_t op : g_.node(id).inputs) {
        if (!flat_operand(op, full)) return false;
      }
    }
    return true;
  }

  void emit_flat() {
    const Shape dom = G_.domain();
    work_items = SizeExpr::product(bind_shape(dom, sv_));
    item_cost = SizeExpr::constant(1);
    std::string& o = body_;
    o += "  // Flat: one work item per element.\n";
    o += "#pragma clang loop vectorize(enable)\n";
    o += "  for (int64_t i = begin; i < end; ++i) {\n";
    if (G_.copy_of >= 0) {
      const Node& n = g_.node(G_.copy_of);
      std::string v;
      if (n.op == Op::constant) {
        v = constant_ref(G_.copy_of);
      } else {
        v = load_expr(n.dtype, read_slot_.at(G_.copy_of), "i");
      }
      for (int32_t slot : write_slots_.at(G_.copy_of))
        o += "    " + store_stmt(n.dtype, slot, "i", v) + "\n";
      o += "  }\n";
      return;
    }
    Scope sc{&o, "    ", {}, {}, true, 0};
    for (int32_t id : G_.nodes) {
      const Node& n = g_.node(id);
      emit_node(id, sc);
      if (s_.materialized[static_cast<size_t>(id)]) {
        for (int32_t slot : write_slots_.at(id)) {
          o += "    " + store_stmt(n.dtype, slot, "i", "v" + std::to_string(id)) + "\n";
        }
      }
    }
    o += "  }\n";
  }

  // ---- row kernels ------------------------------------------------------------
  // The offset variable of external node m's row, read by a node whose shape
  // is O ++ [C] (inner = true, reader_plus1 = true), O ++ [1] (inner = false,
  // reader_plus1 = true) or O (reader_plus1 = false). Returns the variable
  // and whether the inner index advances along c.
  std::pair<std::string, bool> row_access(int32_t m, bool reader_plus1, bool reader_inner) {
    const Shape& ms = g_.node(m).shape;
    const size_t orank = G_.outer.size();
    const size_t rank = orank + (reader_plus1 ? 1 : 0);
    const Shape p = pad_left(ms, rank);
    if (p.size() != rank) throw std::logic_error("kiln codegen: operand rank exceeds reader rank");
    bool inner = false;
    if (reader_plus1 && reader_inner && !p[orank].is_one()) inner = true;
    // Strides of the outer dims.
    bool contiguous = true;  // offset = row * extent
    bool broadcast_all = true;
    std::vector<std::string> strides(orank);
    for (size_t j = 0; j < orank; ++j) {
      const bool bcast = p[j].is_one();
      if (bcast) {
        strides[j] = "0";
        if (!G_.outer[j].is_one()) contiguous = false;
      } else {
        strides[j] = prod(p, j + 1, rank);
        broadcast_all = false;
        if (!(p[j] == G_.outer[j])) contiguous = false;
      }
    }
    std::string expr;
    if (orank == 0 || broadcast_all) {
      expr = "0";
    } else if (contiguous) {
      const std::string extent = prod(p, orank, rank);
      expr = extent == "1" ? "row" : "row * " + paren(extent);
    } else {
      need_index_ = true;
      for (size_t j = 0; j < orank; ++j) {
        if (strides[j] == "0") continue;
        const std::string t = strides[j] == "1"
                                  ? "i" + std::to_string(j)
                                  : "i" + std::to_string(j) + " * " + paren(strides[j]);
        expr += (expr.empty() ? "" : " + ") + t;
      }
    }
    auto it = offset_vars_.find(expr);
    if (it == offset_vars_.end()) {
      const std::string var = "o" + std::to_string(offset_vars_.size());
      it = offset_vars_.emplace(expr, var).first;
      offset_order_.push_back(expr);
    }
    return {it->second, inner};
  }

  static std::string paren(const std::string& e) {
    return e.find(' ') == std::string::npos ? e : "(" + e + ")";
  }

  // A row-vector node cheap enough to recompute in a later loop instead of
  // keeping it in scratch: a short inline cone over graph inputs (a cast of
  // an input, say).
  bool rematerializable(int32_t id) const {
    const auto u = static_cast<size_t>(id);
    return s_.inlinable[u] && s_.inline_ops[u] <= 2;
  }

  struct Scope {
    std::string* out;
    std::string indent;
    std::map<std::string, std::string> loads;  // key -> var
    std::set<int32_t> recomputed;
    bool in_loop;
    int32_t phase;
  };

  // How a reader indexes the domain: shape O ++ [C] (plus1, inner),
  // O ++ [1] (plus1) or O.
  struct ReaderKind {
    bool plus1;
    bool inner;
  };

  ReaderKind kind_of(int32_t reader) const {
    const Node& r = g_.node(reader);
    if (ir::is_reduction(r.op)) return {true, true};
    return {r.shape.size() == G_.outer.size() + 1,
            s_.role[static_cast<size_t>(reader)] == NodeRole::row_vector};
  }

  // Expression of operand `op` read by a reader of kind k within scope sc.
  std::string operand(int32_t op, ReaderKind k, Scope& sc) {
    const Node& m = g_.node(op);
    if (m.op == Op::constant) return constant_ref(op);
    const auto o = static_cast<size_t>(op);
    if (s_.group_of[o] == gi_) {
      if (s_.role[o] == NodeRole::row_scalar || s_.phase[o] == sc.phase)
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
      // Computed inline from graph inputs, at the reader's element.
      const std::string key =
          "w" + std::to_string(op) + (k.plus1 ? "+" : "-") + (k.inner ? "c" : "r");
      auto it = sc.loads.find(key);
      if (it != sc.loads.end()) return it->second;
      std::vector<std::string> args;
      for (int32_t c : m.inputs) args.push_back(operand(c, k, sc));
      std::string var = "w" + std::to_string(op) + "_" + std::to_string(load_counter_++);
      *sc.out += sc.indent + std::string(cname(ctype_of(m.dtype))) + " " + var + " = " +
                 finish(op_expr(m, args), m.dtype) + ";\n";
      sc.loads[key] = var;
      return var;
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
    std::string var = "x" + std::to_string(op) + "_" + std::to_string(load_counter_++);
    *sc.out += sc.indent + std::string(cname(ctype_of(m.dtype))) + " " + var + " = " +
               load_expr(m.dtype, read_slot_.at(op), idx) + ";\n";
    sc.loads[key] = var;
    return var;
  }

  // Values are plain (non-const) locals: clang tries to constant-evaluate
  // const initializers recursively, which overflows its stack on a chain of
  // thousands of ops.
  void emit_node(int32_t id, Scope& sc) {
    const Node& n = g_.node(id);
    const ReaderKind k = kind_of(id);
    std::vector<std::string> args;
    for (int32_t op : n.inputs) args.push_back(operand(op, k, sc));
    *sc.out += sc.indent + std::string(cname(ctype_of(n.dtype))) + " v" + std::to_string(id) +
               " = " + finish(op_expr(n, args), n.dtype) + ";\n";
  }

  static CType acc_type(const Node& r, const Node& in) {
    (void)r;
    const CType t = ctype_of(in.dtype);
    return t == CType::b ? CType::i64 : t;
  }

  static bool float_minmax(const Node& r, const Node& in) {
    return (r.op == Op::reduce_max || r.op == Op::reduce_min) && dtype_is_float(in.dtype);
  }
  static bool float_sum(const Node& r, const Node& in) {
    return (r.op == Op::reduce_sum || r.op == Op::reduce_mean) && dtype_is_float(in.dtype);
  }

  std::string acc_init(const Node& r, CType t) {
    switch (r.op) {
      case Op::reduce_max:
        return t == CType::i64 ? "INT64_MIN" : "(-INFINITY)";
      case Op::reduce_min:
        return t == CType::i64 ? "INT64_MAX" : "INFINITY";
      default:
        return t == CType::f32 ? "0.0f" : t == CType::f64 ? "0.0" : "INT64_C(0)";
    }
  }

  static std::string accumulate(const Node& r, const std::string& acc, const std::string& v) {
    if (r.op == Op::reduce_max)
      return acc + " = " + v + " > " + acc + " ? " + v + " : " + acc + ";";
    if (r.op == Op::reduce_min)
      return acc + " = " + v + " < " + acc + " ? " + v + " : " + acc + ";";
    return acc + " += " + v + ";";
  }

  // One loop body over c for loop `p`: the row-vector nodes of phase p,
  // scratch and buffer stores, and the reductions' accumulation into
  // acc_name(r) (lane-indexed when `lane` is not empty).
  void emit_loop_body(int32_t p, const std::string& indent, std::string& out,
                      const std::map<int32_t, std::string>& acc_names) {
    Scope sc{&out, indent, {}, {}, true, p};
    for (int32_t id : G_.nodes) {
      const auto u = static_cast<size_t>(id);
      if (s_.phase[u] != p) continue;
      const Node& n = g_.node(id);
      if (ir::is_reduction(n.op)) {
        const Node& in = g_.node(n.inputs[0]);
        const std::string v =
            convert(operand(n.inputs[0], kind_of(id), sc), ctype_of(in.dtype), acc_type(n, in));
        out += indent + accumulate(n, acc_names.at(id), v) + "\n";
        continue;
      }
      if (s_.role[u] != NodeRole::row_vector) continue;
      emit_node(id, sc);
      const std::string v = "v" + std::to_string(id);
      if (scratch_.count(id)) {
        out.append(indent).append("scr").append(std::to_string(id)).append("[c] = ").append(v);
        out += ";\n";
      }
      if (s_.materialized[u]) {
        for (int32_t slot : write_slots_.at(id)) {
          out += indent + store_stmt(n.dtype, slot, "ow + c", v) + "\n";
          need_ow_ = true;
        }
      }
    }
  }

  void emit_row_scalar(int32_t id, std::string& out) {
    Scope sc{&out, "    ", {}, {}, false, s_.phase[static_cast<size_t>(id)]};
    // Row-scope loads may be shared between row-scalars.
    sc.loads = row_loads_;
    emit_node(id, sc);
    row_loads_ = sc.loads;
    store_row_scalar(id, out);
  }

  void store_row_scalar(int32_t id, std::string& out) {
    if (!s_.materialized[static_cast<size_t>(id)]) return;
    for (int32_t slot : write_slots_.at(id)) {
      out += "    " + store_stmt(g_.node(id).dtype, slot, "row", "v" + std::to_string(id)) + "\n";
    }
  }

  void emit_loop(int32_t p, std::string& out) {
    std::vector<int32_t> reds;
    bool any_minmax = false;
    bool any_fsum = false;
    for (int32_t id : G_.nodes) {
      const Node& n = g_.node(id);
      if (!ir::is_reduction(n.op) || s_.phase[static_cast<size_t>(id)] != p) continue;
      reds.push_back(id);
      const Node& in = g_.node(n.inputs[0]);
      any_minmax |= float_minmax(n, in);
      any_fsum |= float_sum(n, in);
    }
    const std::optional<int64_t> cstatic = static_c();
    out += "    // Loop " + std::to_string(p) + ".\n";
    std::map<int32_t, std::string> acc;
    if (any_minmax) {
      // Float max/min do not vectorize as reductions without fast-math;
      // eight explicit lanes (fully unrolled, SLP-vectorized) do.
      for (int32_t r : reds) {
        const Node& n = g_.node(r);
        const CType t = acc_type(n, g_.node(n.inputs[0]));
        const std::string init = acc_init(n, t);
        out += std::string("    ") + cname(t) + " r" + std::to_string(r) + "[8] = {" + init;
        for (int k = 1; k < 8; ++k) out += ", " + init;
        out += "};\n";
        acc[r] = "r" + std::to_string(r) + "[j]";
      }
      out += "    int64_t c0 = 0;\n";
      out += "    for (; c0 + 8 <= C; c0 += 8) {\n";
      out += "      for (int64_t j = 0; j < 8; ++j) {\n";
      out += "        const int64_t c = c0 + j;\n";
      emit_loop_body(p, "        ", out, acc);
      out += "      }\n    }\n";
      for (int32_t r : reds) acc[r] = "r" + std::to_string(r) + "[0]";
      out += "    for (int64_t c = c0; c < C; ++c) {\n";
      emit_loop_body(p, "      ", out, acc);
      out += "    }\n";
      for (int32_t r : reds) {
        const Node& n = g_.node(r);
        const CType t = acc_type(n, g_.node(n.inputs[0]));
        const std::string a = "r" + std::to_string(r);
        std::string e;
        if (n.op == Op::reduce_max || n.op == Op::reduce_min) {
          const char* cmp = n.op == Op::reduce_max ? " > " : " < ";
          const std::string m = "m" + std::to_string(r);
          out.append("    ").append(cname(t)).append(" ").append(m).append(" = ").append(a);
          out += "[0];\n";
          out.append("    for (int j = 1; j < 8; ++j) ").append(m).append(" = ").append(a);
          out.append("[j]").append(cmp).append(m).append(" ? ").append(a).append("[j] : ");
          out.append(m).append(";\n");
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
        finalize_reduction(r, e, out);
      }
      return;
    }
    for (int32_t r : reds) {
      const Node& n = g_.node(r);
      const CType t = acc_type(n, g_.node(n.inputs[0]));
      out += std::string("    ") + cname(t) + " r" + std::to_string(r) + " = " + acc_init(n, t) +
             ";\n";
      acc[r] = "r" + std::to_string(r);
    }
    const bool blocked = any_fsum && !(cstatic && *cstatic <= kBlock);
    if (blocked) {
      // Float sums in blocks of kBlock: partial sums keep long rows accurate
      // even where the loop does not vectorize.
      std::map<int32_t, std::string> part;
      for (const auto& [r, a] : acc) {
        const Node& n = g_.node(r);
        part[r] = float_sum(n, g_.node(n.inputs[0])) ? "q" + std::to_string(r) : a;
      }
      out += "    for (int64_t cb = 0; cb < C; cb += " + std::to_string(kBlock) + ") {\n";
      out += "      const int64_t ce = C - cb < " + std::to_string(kBlock) + " ? C : cb + " +
             std::to_string(kBlock) + ";\n";
      for (int32_t r : reds) {
        const Node& n = g_.node(r);
        if (!float_sum(n, g_.node(n.inputs[0]))) continue;
        const CType t = acc_type(n, g_.node(n.inputs[0]));
        out += std::string("      ") + cname(t) + " q" + std::to_string(r) + " = " +
               acc_init(n, t) + ";\n";
      }
      out += "#pragma clang loop vectorize(enable)\n";
      out += "      for (int64_t c = cb; c < ce; ++c) {\n";
      emit_loop_body(p, "        ", out, part);
      out += "      }\n";
      for (int32_t r : reds) {
        const Node& n = g_.node(r);
        if (float_sum(n, g_.node(n.inputs[0])))
          out += "      r" + std::to_string(r) + " += q" + std::to_string(r) + ";\n";
      }
      out += "    }\n";
    } else {
      out += "#pragma clang loop vectorize(enable)\n";
      out += "    for (int64_t c = 0; c < C; ++c) {\n";
      emit_loop_body(p, "      ", out, acc);
      out += "    }\n";
    }
    for (int32_t r : reds) finalize_reduction(r, "r" + std::to_string(r), out);
  }

  void finalize_reduction(int32_t r, const std::string& acc_expr, std::string& out) {
    const Node& n = g_.node(r);
    const Node& in = g_.node(n.inputs[0]);
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
    out += std::string("    ") + cname(ctype_of(n.dtype)) + " v" + std::to_string(r) + " = " +
           finish(convert(e, t, ctype_of(n.dtype)), n.dtype) + ";\n";
    store_row_scalar(r, out);
  }

  std::optional<int64_t> static_c() const {
    const Dim& c = G_.inner;
    if (c.is_constant()) return c.value;
    const auto s = static_cast<size_t>(c.sym);
    if (s < sv_.size() && sv_[s] >= 0) return sv_[s];
    return std::nullopt;
  }

  void emit_rows() {
    const Shape dom = G_.domain();
    const size_t orank = G_.outer.size();
    work_items = SizeExpr::product(bind_shape(G_.outer, sv_));
    item_cost = SizeExpr::of_dim(bind_shape({G_.inner}, sv_)[0]);

    // Row-vectors used by a later loop are kept in per-row scratch (unless
    // cheap to recompute).
    for (int32_t id : G_.nodes) {
      const Node& n = g_.node(id);
      if (ir::is_reduction(n.op)) continue;
      for (int32_t op : n.inputs) {
        const auto o = static_cast<size_t>(op);
        if (s_.group_of[o] != gi_ || s_.role[o] != NodeRole::row_vector) continue;
        if (s_.phase[o] < s_.phase[static_cast<size_t>(id)] && !rematerializable(op))
          scratch_.insert(op);
      }
    }

    std::string rowbody;
    // Row-scalars of phase p run before loop p; those past the last loop after it.
    for (int32_t p = 0; p < G_.num_loops; ++p) {
      for (int32_t id : G_.nodes) {
        const auto u = static_cast<size_t>(id);
        if (s_.role[u] == NodeRole::row_scalar && !ir::is_reduction(g_.node(id).op) &&
            s_.phase[u] == p) {
          emit_row_scalar(id, rowbody);
        }
      }
      emit_loop(p, rowbody);
    }
    for (int32_t id : G_.nodes) {
      const auto u = static_cast<size_t>(id);
      if (s_.role[u] == NodeRole::row_scalar && !ir::is_reduction(g_.node(id).op) &&
          s_.phase[u] >= G_.num_loops) {
        emit_row_scalar(id, rowbody);
      }
    }

    std::string& o = body_;
    o += "  // Rows: one work item per row of " + std::to_string(orank) +
         " outer dim(s); C elements each.\n";
    o += "  const int64_t C = " + dim(G_.inner) + ";\n";
    (void)dom;
    // Scratch rows.
    const std::optional<int64_t> cs = static_c();
    std::vector<int32_t> heap_scratch;
    for (int32_t id : scratch_) {
      const Node& n = g_.node(id);
      const char* t = cname(ctype_of(n.dtype));
      const std::string name = "scr" + std::to_string(id);
      if (cs && *cs * 8 <= kStackScratchBytes) {
        o += std::string("  ") + t + " " + name + "[" + std::to_string(std::max<int64_t>(*cs, 1)) +
             "];\n";
      } else {
        o += std::string("  ") + t + "* __restrict " + name + " = (" + t +
             "*)__builtin_malloc(sizeof(" + t + ") * (C > 0 ? C : 1));\n";
        o += "  if (" + name + " == 0) __builtin_trap();\n";
        heap_scratch.push_back(id);
      }
    }
    if (need_index_) {
      for (size_t j = 0; j < orank; ++j) {
        o += "  const int64_t O" + std::to_string(j) + " = " + dim(G_.outer[j]) + ";\n";
      }
      o += "  // Multi-index of the row, advanced incrementally.\n";
      for (size_t j = 0; j < orank; ++j) o += "  int64_t i" + std::to_string(j) + ";\n";
      o += "  {\n    int64_t t = begin;\n";
      for (size_t j = orank; j-- > 1;) {
        o += "    i" + std::to_string(j) + " = t % O" + std::to_string(j) + ";\n";
        o += "    t /= O" + std::to_string(j) + ";\n";
      }
      o += "    i0 = t;\n  }\n";
    }
    o += "  for (int64_t row = begin; row < end; ++row) {\n";
    for (const auto& expr : offset_order_) {
      o += "    const int64_t " + offset_vars_.at(expr) + " = " + expr + ";\n";
    }
    if (need_ow_) o += "    const int64_t ow = row * C;\n";
    o += rowbody;
    if (need_index_ && orank > 1) {
      std::string adv =
          "    if (++i" + std::to_string(orank - 1) + " == O" + std::to_string(orank - 1) + ") {\n";
      std::string close = "    }\n";
      std::string ind = "      ";
      adv += ind + "i" + std::to_string(orank - 1) + " = 0;\n";
      for (size_t j = orank - 1; j-- > 1;) {
        adv += ind + "if (++i" + std::to_string(j) + " == O" + std::to_string(j) + ") {\n";
        adv += ind + "  i" + std::to_string(j) + " = 0;\n";
        close.insert(0, "}\n").insert(0, ind);
        ind += "  ";
      }
      adv += ind + "++i0;\n";
      o += adv + close;
    } else if (need_index_) {
      o += "    ++i0;\n";
    }
    o += "  }\n";
    for (int32_t id : heap_scratch) o += "  __builtin_free(scr" + std::to_string(id) + ");\n";
  }

  // ---- assembly ---------------------------------------------------------------
  void assemble() {
    std::string& s = source;
    s += "// Generated by Kiln: kernel " + entry_ + " of graph '" + g_.name + "'.\n";
    if (G_.copy_of >= 0) {
      s += "// Copy of node " + std::to_string(G_.copy_of) + " to its output buffer(s).\n";
    } else {
      s += "// Fused group " + std::to_string(gi_) + ": " + std::to_string(G_.nodes.size()) +
           " node(s) over O=" + ir::shape_to_string(g_, G_.outer) +
           " C=" + ir::shape_to_string(g_, {G_.inner}) + ", " +
           (flat_ ? "flat" : "rows, " + std::to_string(G_.num_loops) + " loop(s) per row") + ".\n";
    }
    s += "#include <stdint.h>\n#include <math.h>\n\n";
    s += "extern \"C\" {\n";
    s += kAbiStruct;
    s += "\n}\n\n";
    static const std::pair<unsigned, std::string_view> kHelpers[] = {
        {kHelperBits, kHelperBitsText},    {kHelperBf16, kHelperBf16Text},
        {kHelperF16, kHelperF16Text},      {kHelperTanh, kHelperTanhText},
        {kHelperGelu, kHelperGeluText},    {kHelperIntDiv, kHelperIntDivText},
        {kHelperIntPow, kHelperIntPowText}};
    bool any = false;
    for (const auto& [bit, text] : kHelpers) {
      if (helpers_ & bit) {
        s += text;
        any = true;
      }
    }
    if (any) s += "\n";
    s += "extern \"C\" __attribute__((visibility(\"default\"))) void " + entry_ +
         "(const KilnCpuKernelArgs* args, int64_t begin, int64_t end) {\n";
    for (int32_t sym : used_syms_) {
      s += "  const int64_t s" + std::to_string(sym) + " = args->symbols[" + std::to_string(sym) +
           "];  // " + g_.symbols[static_cast<size_t>(sym)].name + "\n";
    }
    // Buffers, in argument order.
    std::vector<std::pair<int32_t, std::string>> params(arg_buffers.size());
    for (const auto& [node, slot] : read_slot_) {
      const Node& n = g_.node(node);
      params[static_cast<size_t>(slot)] = {
          slot, std::string("  const ") + storage_name(n.dtype) + "* __restrict b" +
                    std::to_string(slot) + " = (const " + storage_name(n.dtype) +
                    "*)args->buffers[" + std::to_string(slot) + "];  // " + describe(node) + "\n"};
    }
    for (const auto& [node, slots] : write_slots_) {
      const Node& n = g_.node(node);
      for (int32_t slot : slots) {
        params[static_cast<size_t>(slot)] = {
            slot, std::string("  ") + storage_name(n.dtype) + "* __restrict b" +
                      std::to_string(slot) + " = (" + storage_name(n.dtype) + "*)args->buffers[" +
                      std::to_string(slot) + "];  // " +
                      describe_buffer(arg_buffers[static_cast<size_t>(slot)], node) + "\n"};
      }
    }
    for (const auto& p : params) s += p.second;
    for (const auto& [id, text] : constants_) s += "  " + text + "\n";
    s += body_;
    s += "}\n";
  }

  std::string describe(int32_t node) const {
    const Node& n = g_.node(node);
    std::string d = n.op == Op::input ? "input '" + n.name + "'" : "node " + std::to_string(node);
    return d + " " + std::string(dtype_name(n.dtype)) + " " + ir::shape_to_string(g_, n.shape);
  }

  std::string describe_buffer(uint32_t b, int32_t node) const {
    const PlanBuffer& pb = bm_.buffers[b];
    const Node& n = g_.node(node);
    std::string d = pb.role == BufferRole::output ? "output '" + g_.output_names.at(pb.index) + "'"
                                                  : "temp " + std::to_string(pb.index);
    return d + " (node " + std::to_string(node) + ") " + std::string(dtype_name(n.dtype)) + " " +
           ir::shape_to_string(g_, n.shape);
  }

  static constexpr int64_t kBlock = 256;
  static constexpr int64_t kStackScratchBytes = 32768;

  const Graph& g_;
  const Schedule& s_;
  const BufferMap& bm_;
  int32_t gi_;
  const FusedGroup& G_;
  const ir::SymbolValues& sv_;
  std::string entry_;

  bool flat_ = false;
  bool need_index_ = false;
  bool need_ow_ = false;
  unsigned helpers_ = 0;
  int load_counter_ = 0;
  std::set<int32_t> used_syms_;
  std::map<int32_t, int32_t> read_slot_;
  std::map<int32_t, std::vector<int32_t>> write_slots_;
  std::map<int32_t, std::string> constants_;
  std::map<std::string, std::string> offset_vars_;
  std::vector<std::string> offset_order_;
  std::map<std::string, std::string> row_loads_;
  std::set<int32_t> scratch_;
  std::string body_;
};

}  // namespace

CpuLoweredGraph lower_cpu(const ir::Graph& g, const ir::SymbolValues& static_values,
                          const CpuCodegenOptions& options) {
  const Schedule s = schedule_graph(g);
  const BufferMap bm = plan_buffers(g, s, static_values);
  CpuLoweredGraph out;
  out.buffers = bm.buffers;
  for (size_t gi = 0; gi < s.groups.size(); ++gi) {
    const std::string entry = options.entry_prefix + "_k" + std::to_string(gi);
    KernelEmitter e(g, s, bm, static_cast<int32_t>(gi), static_values, entry);
    e.run();
    out.kernels.push_back(CpuKernel{entry, std::move(e.source)});
    out.launches.push_back(
        CpuLaunch{static_cast<uint32_t>(gi), e.arg_buffers, e.work_items, e.item_cost});
  }
  return out;
}

std::string cpu_abi_source() {
  std::string s;
  s += "// Generated by Kiln: the CPU kernel ABI version of this shared object.\n";
  s += "extern \"C\" __attribute__((visibility(\"default\"))) int kiln_cpu_abi_version(void) { "
       "return 1; }\n";
  return s;
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
