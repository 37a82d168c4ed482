// The text the C++ (CPU) and CUDA emitters share (group_emitter.h).
#include "group_emitter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cpu_codegen_support.h"

namespace kiln::compiler::codegen_detail {

using cpu_detail::kHelperBf16;
using cpu_detail::kHelperBits;
using cpu_detail::kHelperF16;
using cpu_detail::kHelperGelu;
using cpu_detail::kHelperGeluBf16;
using cpu_detail::kHelperGeluF16;
using cpu_detail::kHelperIntDiv;
using cpu_detail::kHelperIntPow;
using cpu_detail::kHelperTanh;

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

Shape strip_leading_ones(const Shape& s) {
  size_t i = 0;
  while (i < s.size() && s[i].is_one()) ++i;
  return Shape(s.begin() + static_cast<std::ptrdiff_t>(i), s.end());
}

bool all_ones(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](const Dim& d) { return d.is_one(); });
}

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
  // A reshape reads its root's buffer in place (its own output buffer, when
  // it is an output, is only a copy group's destination).
  for (size_t id = 0; id < g.nodes.size(); ++id) {
    if (g.nodes[id].op != Op::reshape || !s.live[id]) continue;
    m.read_buffer[id] = m.read_buffer[static_cast<size_t>(view_root(g, static_cast<int32_t>(id)))];
  }
  return m;
}

GroupEmitter::GroupEmitter(const Graph& g, const Schedule& s, const BufferMap& bm, int32_t gi,
                           const ir::SymbolValues& sv, std::string entry,
                           const BackendPolicy& policy)
    : g_(g),
      s_(s),
      bm_(bm),
      gi_(gi),
      G_(s.groups[static_cast<size_t>(gi)]),
      sv_(sv),
      entry_(std::move(entry)),
      policy_(policy) {}

int32_t GroupEmitter::add_argument(uint32_t buffer) {
  const auto slot = static_cast<int32_t>(arg_buffers_.size());
  arg_buffers_.push_back(buffer);
  return slot;
}

int32_t GroupEmitter::add_read(int32_t node, uint32_t buffer) {
  const int32_t slot = add_argument(buffer);
  read_slot_[node] = slot;
  return slot;
}

int32_t GroupEmitter::add_write(int32_t node, uint32_t buffer) {
  const int32_t slot = add_argument(buffer);
  write_slots_[node].push_back(slot);
  return slot;
}

std::string GroupEmitter::fresh_name(const char* prefix, int32_t node) {
  return names_.fresh(prefix, node);
}

DType partial_dtype(CType acc) {
  return acc == CType::f64 ? DType::f64 : acc == CType::i64 ? DType::i64 : DType::f32;
}

GroupEmitter::SplitPlan GroupEmitter::plan_split() {
  SplitPlan p;
  if (G_.reduction_of < 0) return p;
  const std::vector<ReduceSegment> segs = reduce_segments();
  p.outputs = SizeExpr::product(bind_shape(g_.node(G_.reduction_of).shape, sv_));
  const bool columns = !segs.back().reduced;
  if (columns && !policy_.split_columns) return p;
  // Rows split the last reduced run, columns the first.
  const auto run = columns ? std::find_if(segs.begin(), segs.end(),
                                          [](const ReduceSegment& sg) { return sg.reduced; })
                           : segs.end() - 1;
  const SizeExpr length = SizeExpr::product(bind_shape(run->dims, sv_));
  const int64_t enough = columns ? policy_.column_split_outputs : policy_.row_split_outputs;
  const int64_t chunk = columns ? policy_.column_split_chunk : policy_.row_split_chunk;
  if (p.outputs.is_constant() && p.outputs.evaluate({}) >= enough) return p;
  if (length.is_constant() && length.evaluate({}) < 2 * chunk) return p;
  p.split = true;
  p.parts =
      length.ceil_div(SizeExpr::constant(chunk)).min(SizeExpr::constant(policy_.max_split_parts));
  return p;
}

CType GroupEmitter::reduce_acc_type() {
  const Node& r = g_.node(G_.reduction_of);
  const bool columns = !reduce_segments().back().reduced;
  return general_acc_type(r, g_.node(r.inputs.at(0)), columns || policy_.wide_row_sums);
}

void GroupEmitter::set_pass(int pass, std::vector<uint32_t> partial_buffers) {
  pass_ = pass;
  partial_buffers_ = std::move(partial_buffers);
}

void GroupEmitter::reduction_arguments() {
  const int32_t rid = G_.reduction_of;
  if (pass_ != 2) {
    for (int32_t m : reduction_reads()) {
      add_read(m, static_cast<uint32_t>(bm_.read_buffer.at(static_cast<size_t>(m))));
    }
  }
  if (!partial_buffers_.empty()) partial_dtype_ = partial_dtype(reduce_acc_type());
  for (uint32_t b : partial_buffers_) part_slots_.push_back(add_argument(b));
  if (pass_ != 1) {
    for (uint32_t b : bm_.write_buffers.at(static_cast<size_t>(rid))) add_write(rid, b);
  }
}

std::vector<GroupEmitter::Argument> GroupEmitter::arguments() const {
  std::vector<Argument> args(arg_buffers_.size());
  for (const auto& [node, slot] : read_slot_) {
    args[static_cast<size_t>(slot)] = {g_.node(node).dtype, false, describe(node)};
  }
  for (const auto& [node, slots] : write_slots_) {
    for (int32_t slot : slots) {
      args[static_cast<size_t>(slot)] = {
          g_.node(node).dtype, true,
          describe_buffer(arg_buffers_[static_cast<size_t>(slot)], node)};
    }
  }
  for (size_t k = 0; k < part_slots_.size(); ++k) {
    args[static_cast<size_t>(part_slots_[k])] = {
        k == 0 ? partial_dtype_ : DType::i64, pass_ == 1,
        std::string("partial ") + (k == 0 ? "values" : "indices") + " (plan buffer " +
            std::to_string(partial_buffers_[k]) + ")"};
  }
  return args;
}

void GroupEmitter::kernel_comment(CodeWriter& w, const char* kind,
                                  const std::string& shape_note) const {
  w.line("// Generated by Kiln: ", kind, " ", entry_, " of graph '", g_.name, "'.");
  const std::string gi = std::to_string(gi_);
  const std::string after = shape_note.empty() ? "" : "; " + shape_note;
  if (G_.copy_of >= 0) {
    w.line("// Copy of node ", std::to_string(G_.copy_of), " to its output buffer(s).");
  } else if (G_.reduction_of >= 0) {
    w.line("// Group ", gi, ": ", reduction_note(), after, ".");
  } else if (G_.matmul_of >= 0) {
    w.line("// Group ", gi, ": matmul node ", std::to_string(G_.matmul_of), " and its epilogue.");
  } else if (G_.index_of >= 0) {
    w.line("// Group ", gi, ": ", index_note(), after, ".");
  } else {
    w.line("// Fused group ", gi, ": ", std::to_string(G_.nodes.size()),
           " node(s) over O=", ir::shape_to_string(g_, G_.outer),
           " C=", ir::shape_to_string(g_, {G_.inner}), ", ", shape_note, ".");
  }
}

void GroupEmitter::emit_row_scalar(int32_t id, CodeWriter& w, const std::string& store_condition) {
  Scope sc{&w, nullptr, row_loads_, {}, false, s_.phase[static_cast<size_t>(id)]};
  emit_node(id, sc);
  row_loads_ = sc.loads;
  store_row_scalar(id, w, store_condition);
}

void GroupEmitter::store_row_scalar(int32_t id, CodeWriter& w, const std::string& store_condition) {
  if (!s_.materialized[static_cast<size_t>(id)]) return;
  const std::string condition = store_condition.empty() ? "" : "if (" + store_condition + ") ";
  for (int32_t slot : write_slots_.at(id)) {
    w.line(condition, store_stmt(g_.node(id).dtype, slot, "row", numbered("v", id)));
  }
}

std::string GroupEmitter::dim(const Dim& d) {
  if (d.is_constant()) return std::to_string(d.value);
  const auto s = static_cast<size_t>(d.sym);
  if (s < sv_.size() && sv_[s] >= 0) return std::to_string(sv_[s]);
  used_syms_.insert(d.sym);
  return numbered("s", d.sym);
}

std::string GroupEmitter::prod(const Shape& sh, size_t b, size_t e) {
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

void GroupEmitter::collect_arguments() {
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
  } else if (G_.reduction_of >= 0) {
    const int32_t op = g_.node(G_.reduction_of).inputs.at(0);
    if (reduction_operand_inline(g_, s_.inlinable, G_.reduction_of)) {
      note_read(op);
    } else {
      reads.insert(op);
    }
  } else {
    for (int32_t id : G_.nodes) {
      for (int32_t op : g_.node(id).inputs) note_read(op);
    }
  }
  for (int32_t r : reads) {
    const int32_t b = bm_.read_buffer[static_cast<size_t>(r)];
    if (b < 0) throw std::logic_error("kiln codegen: node " + std::to_string(r) + " has no buffer");
    add_read(r, static_cast<uint32_t>(b));
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
      add_write(w, b);
    }
  }
}

std::string GroupEmitter::load_expr(DType t, int32_t slot, const std::string& idx) {
  return load_value(t, numbered("b", slot) + "[" + idx + "]");
}

std::string GroupEmitter::load_value(DType t, const std::string& p) {
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

std::string GroupEmitter::store_stmt(DType t, int32_t slot, const std::string& idx,
                                     const std::string& v) {
  return numbered("b", slot) + "[" + idx + "] = " + store_value(t, v) + ";";
}

std::string GroupEmitter::store_value(DType t, const std::string& v) {
  switch (t) {
    case DType::f32:
    case DType::f64:
    case DType::i64:
      return v;
    case DType::i32:
      return "(int32_t)" + v;
    case DType::bf16:
      helpers_ |= kHelperBits | kHelperBf16;
      return "kiln_f32_to_bf16(" + v + ")";
    case DType::f16:
      helpers_ |= kHelperBits | kHelperF16;
      return "kiln_f32_to_f16(" + v + ")";
    case DType::boolean:
      return "(uint8_t)" + v;
  }
  return v;
}

std::string GroupEmitter::finish(const std::string& e, DType t) {
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

std::string GroupEmitter::constant_ref(int32_t id) {
  const Node& n = g_.node(id);
  if (!constants_.count(id)) {
    constants_[id] = std::string("const ") + cname(ctype_of(n.dtype)) + " k" + std::to_string(id) +
                     " = " + literal(n.scalar, n.dtype) + ";";
  }
  return numbered("k", id);
}

std::string GroupEmitter::op_expr(int32_t id, const std::vector<std::string>& args) {
  const Node& n = g_.node(id);
  // An identity: its readers broadcast it like any operand.
  if (n.op == Op::expand) return args.at(0);
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
      if (const auto to =
              policy_.device_math && ar == CType::f32 ? rounded_to_16_bits(id) : std::nullopt) {
        helpers_ |= *to == DType::bf16 ? kHelperGeluBf16 : kHelperGeluF16;
        e = std::string(*to == DType::bf16 ? "kiln_gelu_bf16_f32(" : "kiln_gelu_f16_f32(") +
            arg(0, CType::f32) + ")";
      } else if (ar == CType::f32) {
        helpers_ |= kHelperGelu;
        e = "kiln_gelu_f32(" + arg(0, CType::f32) + ")";
      } else {
        const std::string a = arg(0, CType::f64);
        e = convert("(0.5 * " + a + " * (1.0 + erf(" + a + " * 0.70710678118654752440)))",
                    CType::f64, ar);
      }
      break;
    case Op::rsqrt:
      if (ar == CType::f32 && policy_.device_math) {
        e = "rsqrtf(" + arg(0, CType::f32) + ")";
      } else if (ar == CType::f32) {
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
      if (f && policy_.device_math) {
        e = "__fdividef(" + arg(0, ar) + ", " + arg(1, ar) + ")";
      } else if (fl) {
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

bool GroupEmitter::recomputed_here(int32_t op) const {
  const auto u = static_cast<size_t>(op);
  return s_.group_of[u] != gi_ && s_.inlinable[u] && !is_leaf(g_.node(op));
}

std::pair<std::string, bool> GroupEmitter::row_access(int32_t m, bool reader_plus1,
                                                      bool reader_inner) {
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
      const std::string t =
          strides[j] == "1" ? numbered("i", j) : numbered("i", j) + " * " + paren(strides[j]);
      expr += (expr.empty() ? "" : " + ") + t;
    }
  }
  auto it = offset_vars_.find(expr);
  if (it == offset_vars_.end()) {
    const std::string var = numbered("o", offset_vars_.size());
    it = offset_vars_.emplace(expr, var).first;
    offset_order_.push_back(expr);
  }
  return {it->second, inner};
}

std::string paren(const std::string& e) {
  return e.find(' ') == std::string::npos ? e : "(" + e + ")";
}

GroupEmitter::ReaderKind GroupEmitter::kind_of(int32_t reader) const {
  const Node& r = g_.node(reader);
  if (ir::is_reduction(r.op)) return {true, true};
  return {r.shape.size() == G_.outer.size() + 1,
          s_.role[static_cast<size_t>(reader)] == NodeRole::row_vector};
}

CType GroupEmitter::acc_type(const Node& r, const Node& in) {
  (void)r;
  const CType t = ctype_of(in.dtype);
  return t == CType::b ? CType::i64 : t;
}

bool GroupEmitter::float_minmax(const Node& r, const Node& in) {
  return (r.op == Op::reduce_max || r.op == Op::reduce_min) && dtype_is_float(in.dtype);
}

bool GroupEmitter::float_sum(const Node& r, const Node& in) {
  return (r.op == Op::reduce_sum || r.op == Op::reduce_mean) && dtype_is_float(in.dtype);
}

std::string GroupEmitter::acc_init(const Node& r, CType t) {
  switch (r.op) {
    case Op::reduce_max:
      return t == CType::i64 ? "INT64_MIN" : "(-INFINITY)";
    case Op::reduce_min:
      return t == CType::i64 ? "INT64_MAX" : "INFINITY";
    default:
      return t == CType::f32 ? "0.0f" : t == CType::f64 ? "0.0" : "INT64_C(0)";
  }
}

std::string GroupEmitter::accumulate(const Node& r, const std::string& acc, const std::string& v) {
  if (r.op == Op::reduce_max) return acc + " = " + v + " > " + acc + " ? " + v + " : " + acc + ";";
  if (r.op == Op::reduce_min) return acc + " = " + v + " < " + acc + " ? " + v + " : " + acc + ";";
  return acc + " += " + v + ";";
}

std::vector<GroupEmitter::ReduceSegment> GroupEmitter::reduce_segments() {
  const Node& n = g_.node(G_.reduction_of);
  const Shape& sh = g_.node(n.inputs.at(0)).shape;
  const std::vector<int32_t> axes = ir::reduced_axes(n);
  std::vector<ReduceSegment> segs;
  size_t b = 0;
  while (b < sh.size()) {
    const bool red = std::find(axes.begin(), axes.end(), static_cast<int32_t>(b)) != axes.end();
    if (sh[b].is_one()) {
      ++b;
      continue;
    }
    size_t e = b + 1;
    // Extend over dims of the same kind (and dims of 1, which change nothing).
    while (e < sh.size() &&
           (sh[e].is_one() ||
            (std::find(axes.begin(), axes.end(), static_cast<int32_t>(e)) != axes.end()) == red))
      ++e;
    ReduceSegment seg;
    seg.dims.assign(sh.begin() + static_cast<std::ptrdiff_t>(b),
                    sh.begin() + static_cast<std::ptrdiff_t>(e));
    seg.reduced = red;
    seg.extent = prod(sh, b, e);
    seg.stride = prod(sh, e, sh.size());
    segs.push_back(std::move(seg));
    b = e;
  }
  if (std::none_of(segs.begin(), segs.end(), [](const ReduceSegment& x) { return x.reduced; })) {
    segs.push_back({{}, true, "1", "1"});
  }
  return segs;
}

CType GroupEmitter::general_acc_type(const Node& r, const Node& in, bool wide_sums) {
  const CType t = ctype_of(in.dtype);
  if (t == CType::b) return CType::i64;
  if (t == CType::f32 && wide_sums &&
      (r.op == Op::reduce_sum || r.op == Op::reduce_mean || r.op == Op::reduce_prod))
    return CType::f64;
  return t;
}

std::set<int32_t> GroupEmitter::reduction_reads() const {
  const int32_t op = g_.node(G_.reduction_of).inputs.at(0);
  std::set<int32_t> reads;
  if (!reduction_operand_inline(g_, s_.inlinable, G_.reduction_of)) {
    reads.insert(op);
    return reads;
  }
  std::function<void(int32_t)> walk = [&](int32_t m) {
    const Node& n = g_.node(m);
    if (n.op == Op::constant) return;
    if (n.op == Op::input || !recomputed_here(m)) {
      reads.insert(m);
      return;
    }
    for (int32_t c : n.inputs) walk(c);
  };
  walk(op);
  return reads;
}

std::string GroupEmitter::reduction_operand_at(const std::string& idx, CType to, CodeWriter& w) {
  const int32_t in_id = g_.node(G_.reduction_of).inputs.at(0);
  std::function<std::string(int32_t)> value = [&](int32_t m) -> std::string {
    const Node& n = g_.node(m);
    if (n.op == Op::constant) return constant_ref(m);
    auto it = read_slot_.find(m);
    if (it != read_slot_.end()) return load_expr(n.dtype, it->second, idx);
    std::vector<std::string> args;
    for (int32_t c : n.inputs) args.push_back(value(c));
    std::string var = fresh_name("w", m);
    w.line(cname(ctype_of(n.dtype)), " ", var, " = ", finish(op_expr(m, args), n.dtype), ";");
    return var;
  };
  return convert(value(in_id), ctype_of(g_.node(in_id).dtype), to);
}

std::string GroupEmitter::general_combine(const Node& r, CType t, const std::string& a,
                                          const std::string& ai, const std::string& b,
                                          const std::string& bi) {
  switch (r.op) {
    case Op::reduce_max:
      return a + " = " + b + " > " + a + " ? " + b + " : " + a + ";";
    case Op::reduce_min:
      return a + " = " + b + " < " + a + " ? " + b + " : " + a + ";";
    case Op::reduce_prod:
      return a + " *= " + b + ";";
    case Op::argmax: {
      const std::string tie = "(" + b + " == " + a + " && " + bi + " < " + ai + ")";
      const std::string better = t == CType::i64
                                     ? b + " > " + a + " || " + tie
                                     : "(" + b + " != " + b + ") ? (" + a + " == " + a + " || " +
                                           bi + " < " + ai + ") : (" + a + " == " + a + " && (" +
                                           b + " > " + a + " || " + tie + "))";
      return "if (" + better + ") { " + a + " = " + b + "; " + ai + " = " + bi + "; }";
    }
    default:
      return a + " += " + b + ";";
  }
}

void GroupEmitter::index_arguments() {
  const int32_t id = G_.index_of;
  std::set<int32_t> reads;
  std::function<void(int32_t)> leaves = [&](int32_t m) {
    const Node& n = g_.node(m);
    if (n.op == Op::constant) return;
    if (n.op == Op::input || n.op == Op::reshape) {
      reads.insert(m);
      return;
    }
    for (int32_t c : n.inputs) leaves(c);
  };
  for (int32_t op : g_.node(id).inputs) {
    if (g_.node(op).op == Op::constant) continue;  // a literal
    if (index_operand_inline(g_, s_.inlinable, op)) {
      leaves(op);
    } else {
      reads.insert(op);
    }
  }
  for (int32_t r : reads) {
    const int32_t b = bm_.read_buffer.at(static_cast<size_t>(r));
    if (b < 0) throw std::logic_error("kiln codegen: node " + std::to_string(r) + " has no buffer");
    add_read(r, static_cast<uint32_t>(b));
  }
  for (uint32_t b : bm_.write_buffers.at(static_cast<size_t>(id))) {
    add_write(id, b);
  }
}

std::string GroupEmitter::index_operand_at(int32_t op, const std::string& off, CodeWriter& w) {
  const Node& m = g_.node(op);
  auto it = read_slot_.find(op);
  if (it != read_slot_.end() && !index_operand_inline(g_, s_.inlinable, op)) {
    return "b" + std::to_string(it->second) + "[" + off + "]";
  }
  std::function<std::string(int32_t)> value = [&](int32_t k) -> std::string {
    const Node& n = g_.node(k);
    if (n.op == Op::constant) return constant_ref(k);
    auto slot = read_slot_.find(k);
    if (slot != read_slot_.end() && (n.op == Op::input || n.op == Op::reshape)) {
      return load_expr(n.dtype, slot->second, off);
    }
    std::vector<std::string> args;
    for (int32_t c : n.inputs) args.push_back(value(c));
    std::string var = fresh_name("w", k);
    w.line(cname(ctype_of(n.dtype)), " ", var, " = ", finish(op_expr(k, args), n.dtype), ";");
    return var;
  };
  return store_value(m.dtype, value(op));
}

std::vector<std::string> GroupEmitter::strides_of(const Shape& sh) {
  std::vector<std::string> st;
  for (size_t j = 0; j < sh.size(); ++j) st.push_back(prod(sh, j + 1, sh.size()));
  return st;
}

std::string GroupEmitter::dot(const std::vector<std::string>& terms,
                              const std::vector<std::string>& strides) {
  std::string e;
  for (size_t j = 0; j < terms.size(); ++j) {
    if (terms[j] == "0" || strides[j] == "0") continue;
    const std::string t =
        strides[j] == "1" ? terms[j] : paren(terms[j]) + " * " + paren(strides[j]);
    e += (e.empty() ? "" : " + ") + t;
  }
  return e.empty() ? "0" : e;
}

std::string GroupEmitter::fill_literal(DType t) {
  switch (t) {
    case DType::f32:
      return "NAN";
    case DType::f64:
      return "(double)NAN";
    case DType::f16:
      return "(uint16_t)0x7e00";
    case DType::bf16:
      return "(uint16_t)0x7fc0";
    case DType::i32:
      return "(int32_t)(-2147483647 - 1)";
    case DType::i64:
      return "INT64_MIN";
    case DType::boolean:
      return "(uint8_t)1";
  }
  return "0";
}

std::string GroupEmitter::index_element(const std::string& it, CodeWriter& w) {
  const int32_t id = G_.index_of;
  const Node& n = g_.node(id);
  const size_t rank = n.shape.size();
  const auto a = static_cast<size_t>(n.axis);
  std::vector<std::string> i;
  for (size_t j = 0; j < rank; ++j) i.push_back(numbered("i", j));
  const std::string T = storage_name(n.dtype);
  auto operand_shape = [&](size_t k) -> const Shape& { return g_.node(n.inputs.at(k)).shape; };
  switch (n.op) {
    case Op::permute: {
      const std::vector<std::string> st = strides_of(operand_shape(0));
      std::vector<std::string> terms(rank, "0");
      for (size_t j = 0; j < rank; ++j) terms[static_cast<size_t>(n.axes[j])] = i[j];
      const std::string v = index_operand_at(n.inputs[0], dot(terms, st), w);
      w.line("const ", T, " y = ", v, ";");
      return "y";
    }
    case Op::slice: {
      const std::vector<std::string> st = strides_of(operand_shape(0));
      std::vector<std::string> terms = i;
      const int64_t start = n.params.at(0);
      const int64_t step = n.params.at(2);
      std::string t = step == 1 ? i[a] : i[a] + " * " + std::to_string(step);
      if (start != 0) t = std::to_string(start) + " + " + t;
      terms[a] = t;
      const std::string v = index_operand_at(n.inputs[0], dot(terms, st), w);
      w.line("const ", T, " y = ", v, ";");
      return "y";
    }
    case Op::concat: {
      // A branch per operand, on the concatenated axis's index.
      w.line(T, " y;");
      int64_t at = 0;
      std::optional<CodeWriter::Block> branch;
      for (size_t k = 0; k < n.inputs.size(); ++k) {
        const Shape& sk = operand_shape(k);
        std::vector<std::string> terms = i;
        if (at != 0) terms[a] = i[a] + " - " + std::to_string(at);
        const std::string off = dot(terms, strides_of(sk));
        at += sk[a].value;
        const bool last = k + 1 == n.inputs.size();
        const std::string test = "if (" + i[a] + " < " + std::to_string(at) + ")";
        if (k == 0) {
          branch.emplace(w.block(last ? "" : test));
        } else {
          branch->chain(last ? "else" : "else " + test);
        }
        const std::string v = index_operand_at(n.inputs[k], off, w);
        w.line("y = ", v, ";");
      }
      return "y";
    }
    case Op::gather: {
      const Shape& table = operand_shape(0);
      const Shape& idx = operand_shape(1);
      const size_t q = idx.size();
      std::vector<std::string> iterms(i.begin() + static_cast<std::ptrdiff_t>(a),
                                      i.begin() + static_cast<std::ptrdiff_t>(a + q));
      const std::string iv = index_operand_at(n.inputs[1], dot(iterms, strides_of(idx)), w);
      const std::string V = dim(table[a]);
      w.line("int64_t q = (int64_t)", iv, ";");
      w.line("if (q < 0) q += ", V, ";");
      w.line("const bool in_range = (uint64_t)q < (uint64_t)", paren(V), ";");
      // An index out of range reads element 0 (every dim is >= 1), then
      // yields the fill value: no load ever leaves the table.
      w.line("const ", it, " qv = in_range ? (", it, ")q : 0;");
      std::vector<std::string> tterms;
      for (size_t j = 0; j < table.size(); ++j) {
        tterms.push_back(j < a ? i[j] : j == a ? "qv" : i[j - 1 + q]);
      }
      const std::string tv = index_operand_at(n.inputs[0], dot(tterms, strides_of(table)), w);
      w.line("const ", T, " y = in_range ? ", tv, " : ", fill_literal(n.dtype), ";");
      return "y";
    }
    case Op::iota: {
      const std::string v = convert("(int64_t)" + i[a], CType::i64, ctype_of(n.dtype));
      w.line("const ", T, " y = ", store_value(n.dtype, v), ";");
      return "y";
    }
    default:
      throw std::logic_error("kiln codegen: not an index op: " + std::string(ir::op_name(n.op)));
  }
}

void GroupEmitter::store_index_element(const std::string& it, const std::string& at,
                                       CodeWriter& w) {
  const std::string y = index_element(it, w);
  for (int32_t slot : write_slots_.at(G_.index_of)) {
    w.line(numbered("b", slot), "[", at, "] = ", y, ";");
  }
}

std::string GroupEmitter::index_note() const {
  const Node& n = g_.node(G_.index_of);
  std::string t = std::string(ir::op_name(n.op));
  for (size_t k = 0; k < n.inputs.size(); ++k) t += (k ? ", " : " of ") + describe(n.inputs[k]);
  return t + " to " + ir::shape_to_string(g_, n.shape);
}

std::string GroupEmitter::reduction_note() const {
  const Node& r = g_.node(G_.reduction_of);
  std::string t =
      std::string(ir::op_name(r.op)) + " of " + describe(r.inputs.at(0)) + " over axes [";
  const auto axes = ir::reduced_axes(r);
  for (size_t i = 0; i < axes.size(); ++i) t += (i ? ", " : "") + std::to_string(axes[i]);
  return t + "]" + (r.keepdim ? ", keepdim" : "");
}

void GroupEmitter::decompose_kept(const std::vector<size_t>& kept, size_t nk, CodeWriter& w) {
  w.line("int64_t base = 0;");
  for (size_t q = nk; q-- > 0;) {
    const std::string js = std::to_string(kept[q]);
    w.line("base += (t % E", js, ") * S", js, ";");
    w.line("t /= E", js, ";");
  }
}

void GroupEmitter::nest_reduced(const std::vector<size_t>& loops, CodeWriter& w,
                                const std::function<void(const std::string&)>& inner,
                                const std::string& first_begin, const std::string& first_step) {
  std::vector<CodeWriter::Block> open;
  std::string off = "base";
  for (size_t j : loops) {
    const std::string r = numbered("r", j);
    const std::string js = std::to_string(j);
    const bool first = j == loops.front();
    const std::string begin = first ? first_begin : "0";
    const std::string step = first && !first_step.empty() ? r + " += " + first_step : "++" + r;
    open.push_back(
        w.block("for (int64_t " + r + " = " + begin + "; " + r + " < E" + js + "; " + step + ")"));
    w.line("const int64_t off", js, " = ", off, " + ", r, " * S", js, ";");
    off = numbered("off", j);
  }
  inner(off);
  while (!open.empty()) open.pop_back();  // innermost first
}

std::string GroupEmitter::general_acc_init(const Node& r, CType t) {
  switch (r.op) {
    case Op::reduce_max:
    case Op::argmax:
      return t == CType::i64 ? "INT64_MIN" : "(-INFINITY)";
    case Op::reduce_min:
      return t == CType::i64 ? "INT64_MAX" : "INFINITY";
    case Op::reduce_prod:
      return t == CType::f32 ? "1.0f" : t == CType::f64 ? "1.0" : "INT64_C(1)";
    default:
      return t == CType::f32 ? "0.0f" : t == CType::f64 ? "0.0" : "INT64_C(0)";
  }
}

std::string GroupEmitter::general_accumulate(const Node& r, CType t, const std::string& acc,
                                             const std::string& idx, const std::string& v,
                                             const std::string& pos, bool sentinel) {
  switch (r.op) {
    case Op::reduce_max:
      return acc + " = " + v + " > " + acc + " ? " + v + " : " + acc + ";";
    case Op::reduce_min:
      return acc + " = " + v + " < " + acc + " ? " + v + " : " + acc + ";";
    case Op::reduce_prod:
      return acc + " *= " + v + ";";
    case Op::argmax: {
      // Strictly greater keeps the first maximum; a NaN beats every number
      // and the first NaN stays.
      const std::string better = t == CType::i64 ? v + " > " + acc
                                                 : "(" + acc + " == " + acc + ") && (" + v + " > " +
                                                       acc + " || " + v + " != " + v + ")";
      const std::string cond = sentinel ? idx + " == INT64_MAX || (" + better + ")" : better;
      return "if (" + cond + ") { " + acc + " = " + v + "; " + idx + " = " + pos + "; }";
    }
    default:
      return acc + " += " + v + ";";
  }
}

std::string GroupEmitter::general_finish(const Node& r, CType t, const std::string& acc,
                                         const std::string& idx, const std::string& count) {
  std::string e = acc;
  if (r.op == Op::argmax) return idx;
  if (r.op == Op::reduce_mean) {
    e = "(" + acc + " / (" + std::string(cname(t)) + ")(" + count + "))";
  }
  return finish(convert(e, t, ctype_of(r.dtype)), r.dtype);
}

std::optional<int64_t> GroupEmitter::static_c() const {
  const Dim& c = G_.inner;
  if (c.is_constant()) return c.value;
  const auto s = static_cast<size_t>(c.sym);
  if (s < sv_.size() && sv_[s] >= 0) return sv_[s];
  return std::nullopt;
}

std::string GroupEmitter::describe(int32_t node) const {
  const Node& n = g_.node(node);
  std::string d = n.op == Op::input ? "input '" + n.name + "'" : "node " + std::to_string(node);
  return d + " " + std::string(dtype_name(n.dtype)) + " " + ir::shape_to_string(g_, n.shape);
}

std::string GroupEmitter::describe_buffer(uint32_t b, int32_t node) const {
  const PlanBuffer& pb = bm_.buffers[b];
  const Node& n = g_.node(node);
  std::string d = pb.role == BufferRole::output ? "output '" + g_.output_names.at(pb.index) + "'"
                                                : "temp " + std::to_string(pb.index);
  return d + " (node " + std::to_string(node) + ") " + std::string(dtype_name(n.dtype)) + " " +
         ir::shape_to_string(g_, n.shape);
}

std::optional<DType> GroupEmitter::rounded_to_16_bits(int32_t id) const {
  const auto narrow = [](DType t) { return t == DType::f16 || t == DType::bf16; };
  if (narrow(g_.node(id).dtype)) return g_.node(id).dtype;
  if (std::find(g_.outputs.begin(), g_.outputs.end(), id) != g_.outputs.end()) {
    return std::nullopt;
  }
  std::optional<DType> to;
  for (const Node& n : g_.nodes) {
    if (std::find(n.inputs.begin(), n.inputs.end(), id) == n.inputs.end()) continue;
    if (n.op != Op::cast || !narrow(n.dtype)) return std::nullopt;
    if (!to || n.dtype == DType::f16) to = n.dtype;
  }
  return to;
}

}  // namespace kiln::compiler::codegen_detail
