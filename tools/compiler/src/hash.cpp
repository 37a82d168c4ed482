#include "kiln/compiler/hash.h"

#include <cstring>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "kiln/support/hex.h"

namespace kiln::compiler {
namespace {

// Appends fixed-width little-endian fields, so the hash never depends on the
// host or on struct padding.
class HashWriter {
 public:
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void f64(double v) {
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    u64(bits);
  }
  void str(std::string_view s) {
    u64(s.size());
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  void dim(const ir::Dim& d) {
    i64(d.sym);
    i64(d.is_constant() ? d.value : 0);
  }
  Hash128 finish() const { return hash_bytes(bytes_.data(), bytes_.size()); }

 private:
  std::vector<uint8_t> bytes_;
};

Hash128 structure_of(const ir::Graph& c) {
  HashWriter w;
  w.str("kiln-structure-v1");
  w.u64(c.nodes.size());
  for (const auto& n : c.nodes) {
    w.str(ir::op_name(n.op));
    w.u64(n.inputs.size());
    for (int32_t in : n.inputs) w.i64(in);
    if (n.op == ir::Op::constant) w.f64(n.scalar);
    if (ir::is_reduction(n.op)) {
      w.i64(n.axis);
      w.u64(n.keepdim ? 1 : 0);
      // Only multi-axis reductions add their axes: single-axis hashes stay as they were.
      if (!n.axes.empty()) {
        w.u64(n.axes.size());
        for (int32_t a : n.axes) w.i64(a);
      }
    }
    if (n.op == ir::Op::input) w.i64(n.input_index);
    // Only the shape ops add these: the other ops' hashes stay as they were.
    if (ir::is_shape_op(n.op)) {
      w.i64(n.axis);
      w.u64(n.axes.size());
      for (int32_t a : n.axes) w.i64(a);
      w.u64(n.params.size());
      for (int64_t p : n.params) w.i64(p);
    }
  }
  w.u64(c.outputs.size());
  for (int32_t o : c.outputs) w.i64(o);
  return w.finish();
}

}  // namespace

std::string Hash128::hex() const { return support::hex128(hi, lo); }

Hash128 hash_bytes(const void* data, size_t size) {
  const XXH128_hash_t h = XXH3_128bits(data, size);
  return Hash128{h.low64, h.high64};
}

Hash128 hash_string(std::string_view s) { return hash_bytes(s.data(), s.size()); }

Hash128 structure_hash(const ir::Graph& g) { return structure_of(ir::canonicalize(g)); }

KeyComponents key_components(const ir::Graph& g, const KeyInputs& inputs) {
  const ir::Graph c = ir::canonicalize(g);
  KeyComponents k;
  k.structure = structure_of(c);

  HashWriter dtypes;
  dtypes.str("kiln-dtypes-v1");
  for (const auto& n : c.nodes) dtypes.u64(static_cast<uint64_t>(n.dtype));
  k.dtypes = dtypes.finish();

  HashWriter shapes;
  shapes.str("kiln-shapes-v1");
  shapes.u64(c.symbols.size());
  // Hot values only choose which specializations get built; none of them
  // changes the code of a given one (its static values are hashed below).
  // Leaving them out lets packages built with other hot values share keys,
  // so `kiln merge` and the JIT's cache see the same specialization as one.
  for (const auto& s : c.symbols) {
    shapes.i64(s.min);
    shapes.i64(s.max);
    shapes.i64(s.divisible_by);
  }
  for (const auto& n : c.nodes) {
    shapes.u64(n.shape.size());
    for (const auto& d : n.shape) shapes.dim(d);
  }
  shapes.u64(inputs.static_values.size());
  for (int64_t v : inputs.static_values) shapes.i64(v);
  k.shapes = shapes.finish();

  k.target = hash_string(inputs.target);
  k.options = hash_string(inputs.options);
  k.compiler = hash_string(inputs.compiler_identity);
  k.runtime = hash_string("kiln-package-format-1;cpu-abi-1");
  k.tag = hash_string(inputs.tag);
  return k;
}

Hash128 combine_key(const KeyComponents& c) {
  HashWriter w;
  w.str("kiln-key-v1");
  for (const Hash128* h : {&c.structure, &c.dtypes, &c.shapes, &c.target, &c.options, &c.compiler,
                           &c.runtime, &c.tag}) {
    w.u64(h->lo);
    w.u64(h->hi);
  }
  return w.finish();
}

}  // namespace kiln::compiler
