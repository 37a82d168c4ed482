// The random-graph generator: an op table, and the bounds every value carries
// so that each op is added only where the compiled graph must match the
// interpreter within the dtype's tolerance (docs/testing.md).
#include "random_graph.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kiln/compiler/interpreter.h"
#include "kiln/graph.h"
#include "unit_roundoff.h"

namespace kiln_test {
namespace {

using kiln::DType;
using kiln::Tensor;
using kiln::ir::Dim;
using kiln::ir::Shape;

bool is_float(DType t) { return kiln::dtype_is_float(t); }
bool is_int(DType t) { return t == DType::i32 || t == DType::i64; }

// The smallest subnormal of a float dtype: below the smallest normal a
// rounding errs by up to half of it, whatever the value's magnitude.
double tiny(DType t) {
  switch (t) {
    case DType::f64:
      return 0x1p-1074;
    case DType::f32:
      return 0x1p-149;
    case DType::f16:
      return 0x1p-24;
    case DType::bf16:
      return 0x1p-133;
    default:
      return 0;
  }
}

// The type a kernel computes a float dtype in: f16 and bf16 in f32, rounded
// to 16 bits after every op (graph_api's composites too compute in f32).
DType compute_type(DType t) { return is_16bit(t) ? DType::f32 : t; }

// The rounding of one inexact op whose result has float dtype t, as a
// relative error of |computed - interpreted|: the kernel computes the op in
// t's compute type within `kernel` units of its unit roundoff (1: correctly
// rounded; more for library math) and rounds a 16-bit result once more; the
// interpreter computes it in double within `interp` units of f64's and
// rounds it to t. The two roundings to t can land on neighbouring values
// however close their arguments (together one ulp, 2 u(t) |v|), so every
// inexact op costs at least 2 u(t) (f64: kernel + interp units).
double rounding_rel(DType t, double kernel, double interp) {
  double r = kernel * unit_roundoff(compute_type(t)) + interp * unit_roundoff(DType::f64);
  if (t != DType::f64) r += unit_roundoff(t);  // the interpreter's rounding to t
  if (is_16bit(t)) r += unit_roundoff(t);      // the kernel's, from f32
  return r;
}

// The same rounding's absolute part: subnormal results.
double rounding_abs(DType t, double kernel) {
  return tiny(t) + 0.5 * kernel * tiny(compute_type(t));
}

// Largest magnitude a value may reach: keeps the absolute rounding error of
// later sums and differences within the dtype's atol.
double max_magnitude(DType t) {
  switch (t) {
    case DType::f64:
    case DType::f32:
      return 64;
    case DType::f16:
    case DType::bf16:
      return 16;
    case DType::i32:
    case DType::i64:
      return 1 << 20;  // products stay exact in the interpreter's doubles
    case DType::boolean:
      return 1;
  }
  return 0;
}

// What is known of a value: |v| in [lo, hi], v > 0 when `pos`, and
// |computed - interpreted| <= ea + er * |v| (v the interpreted value; worst
// case over every target's rounding and library math). `exact`: every
// target computes the interpreter's bits (inputs, constants, and ops that
// are correctly rounded or need no rounding); only exact values feed
// comparisons and casts to integers, where a last-bit difference would flip
// the result.
struct Meta {
  double hi = 0;
  double lo = 0;
  bool pos = false;
  double ea = 0;
  double er = 0;
  bool exact = true;
  // An f32 gelu: on CUDA, when every reader casts it to f16 or bf16, it is
  // computed with gelu_narrow.h's fit, far less accurate than f32 (the
  // casts' bounds then count it).
  bool f32_gelu = false;
};

struct Val {
  Tensor t;
  Meta m;
  int uses = 0;
};

// Spreads an operand's error into an absolute bound.
double abs_err(const Meta& m) { return m.ea + m.er * m.hi; }

// An operand's error relative to its own value (needs |v| >= lo > 0, or no
// absolute part).
double rel_err(const Meta& m) {
  if (m.ea == 0) return m.er;
  return m.lo > 0 ? m.er + m.ea / m.lo : INFINITY;
}

// How far u(t) * sum_{k=2..c} k can go: the worst case of any order of c
// additions (a sequence, lanes, a tree) whose partial sums of k terms are
// bounded by k * hi, in units of u * hi. Every partial sum rounds once.
double partial_sums(double c) { return c * (c + 1) / 2 - 1; }

// SymDim has no public constructor: the handles kiln::sym returned, by
// symbol index, for the graph being built.
thread_local std::vector<kiln::SymDim>* g_sym_handles = nullptr;

class Builder;
using BuildFn = std::function<bool(Builder&)>;

struct Entry {
  const char* name;
  int weight;
  BuildFn build;  // adds the op (and any guard ops it needs); false: not possible now
};

class Builder {
 public:
  Builder(uint64_t seed, const RandomGraphOptions& options) : rng_(seed), o_(options) {}

  std::mt19937_64& rng() { return rng_; }
  const RandomGraphOptions& options() const { return o_; }
  int ops() const { return ops_; }

  int64_t uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  template <typename T>
  const T& choose(const std::vector<T>& v) {
    return v[static_cast<size_t>(uniform(0, static_cast<int64_t>(v.size()) - 1))];
  }

  // ---- shapes -------------------------------------------------------------
  void make_full_shape() {
    const int rank = static_cast<int>(uniform(1, 4));
    static const std::vector<int64_t> kSizes = {1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 31, 33, 64};
    int64_t budget = o_.max_numel;
    for (int i = 0; i < rank; ++i) {
      // The dims left share what the budget leaves.
      const auto cap = std::max<int64_t>(
          1, static_cast<int64_t>(std::pow(static_cast<double>(budget), 1.0 / (rank - i))));
      Dim d;
      if (!full_.empty() && !syms_.empty() && chance(0.1)) {
        d = Dim::symbol(static_cast<int32_t>(uniform(0, static_cast<int64_t>(syms_.size()) - 1)));
      } else if (cap >= 2 && chance(0.5)) {
        kiln::SymOptions so;
        so.min = chance(0.7) ? 1 : 2;
        so.max = std::max<int64_t>(so.min, uniform(std::min<int64_t>(cap, 2), cap));
        if (so.max >= 4 && chance(0.2)) {
          so.divisible_by = 2;
          so.min = 2;
          so.max -= so.max % 2;
        }
        if (chance(0.3))
          so.hot = {so.min + (uniform(0, so.max - so.min) / so.divisible_by) * so.divisible_by};
        std::string name = "s";
        name += std::to_string(syms_.size());
        const kiln::SymDim s = kiln::sym(name, so);
        g_sym_handles->push_back(s);
        syms_.push_back(so.max);
        sym_mins_.push_back(so.min);
        d = Dim::symbol(s.index());
      } else {
        std::vector<int64_t> fit;
        for (int64_t v : kSizes) {
          if (v <= cap) fit.push_back(v);
        }
        d = Dim::constant(choose(fit));
      }
      budget = std::max<int64_t>(1, budget / max_of(d));
      full_.push_back(d);
    }
  }

  int64_t max_of(const Dim& d) const {
    return d.is_constant() ? d.value : syms_.at(static_cast<size_t>(d.sym));
  }
  int64_t min_of(const Dim& d) const {
    return d.is_constant() ? d.value : sym_mins_.at(static_cast<size_t>(d.sym));
  }
  int64_t max_numel(const Shape& s) const {
    int64_t n = 1;
    for (const auto& d : s) n *= max_of(d);
    return n;
  }

  // A shape of its own, rank 2 or 3 of small constant dims (for a focus
  // entry that the seed's shapes do not suit).
  Shape free_shape() {
    static const std::vector<int64_t> kSizes = {2, 3, 4, 5, 7, 8};
    Shape s;
    const int64_t rank = uniform(2, 3);
    for (int64_t i = 0; i < rank; ++i) s.push_back(Dim::constant(choose(kSizes)));
    return s;
  }

  // A shape that broadcasts against the full shape: a suffix of it with
  // some dims set to 1 (rarely rank 0).
  Shape derived_shape() {
    if (chance(0.04)) return {};
    const auto keep = static_cast<size_t>(uniform(1, static_cast<int64_t>(full_.size())));
    Shape s(full_.end() - static_cast<std::ptrdiff_t>(keep), full_.end());
    for (auto& d : s) {
      if (chance(0.25)) d = Dim::constant(1);
    }
    return s;
  }

  // NumPy broadcasting as the graph API does it, or nothing; also nothing
  // when the result would pass the element budget.
  std::optional<Shape> broadcast(const Shape& a, const Shape& b) const {
    const size_t rank = std::max(a.size(), b.size());
    Shape out(rank);
    for (size_t i = 0; i < rank; ++i) {
      const Dim* da = i < rank - a.size() ? nullptr : &a[i - (rank - a.size())];
      const Dim* db = i < rank - b.size() ? nullptr : &b[i - (rank - b.size())];
      if (da != nullptr && (db == nullptr || *da == *db || db->is_one())) {
        out[i] = *da;
      } else if (da == nullptr || da->is_one()) {
        out[i] = *db;
      } else {
        return std::nullopt;
      }
    }
    if (max_numel(out) > o_.max_numel) return std::nullopt;
    return out;
  }

  // ---- values ---------------------------------------------------------------
  // The seed's focus dtype (build_graph), which new values and operands
  // prefer; all the more while one of the seed's focus entries runs.
  DType focus_dtype() const { return focus_dtype_; }
  void set_focus(DType t) { focus_dtype_ = t; }
  void set_focused_draw(bool on) { focused_draw_ = on; }
  bool focused_draw() const { return focused_draw_; }
  DType dtype_of(int32_t id) const {
    for (const Val& v : pool_) {
      if (v.t.id() == id) return v.t.dtype();
    }
    return DType::f32;
  }

  DType random_dtype() {
    if (chance(0.4)) return focus_dtype_;
    static const std::vector<std::pair<DType, int>> kWeights = {
        {DType::f32, 40}, {DType::f16, 12}, {DType::bf16, 12},  {DType::f64, 5},
        {DType::i32, 10}, {DType::i64, 6},  {DType::boolean, 8}};
    int total = 0;
    for (const auto& [t, w] : kWeights) total += w;
    int64_t r = uniform(0, total - 1);
    for (const auto& [t, w] : kWeights) {
      if (r < w) return t;
      r -= w;
    }
    return DType::f32;
  }
  DType random_float_dtype() {
    if (is_float(focus_dtype_) && chance(0.4)) return focus_dtype_;
    static const std::vector<DType> kFloats = {DType::f32, DType::f32,  DType::f32,
                                               DType::f16, DType::bf16, DType::f64};
    return choose(kFloats);
  }

  static Meta input_meta(DType t) {
    Meta m;
    if (is_float(t)) {
      m.hi = 2;  // kiln::compiler::random_tensor: +-[0.05, 2), rounded
      m.lo = 0.049;
    } else if (is_int(t)) {
      m.hi = 9;  // [1, 9]
      m.lo = 1;
      m.pos = true;
    } else {
      m.hi = 1;
    }
    return m;
  }

  Val& new_input(DType t, const Shape& shape) {
    std::vector<kiln::DimArg> dims;
    for (const auto& d : shape) {
      if (d.is_constant()) {
        dims.emplace_back(d.value);
      } else {
        dims.emplace_back(sym_handle(d.sym));
      }
    }
    std::string name = "x";  // (not "x" + to_string: GCC 12's -Wrestrict misfires on it)
    name += std::to_string(inputs_++);
    const Tensor x = kiln::input(name, t, dims);
    input_ids_.push_back(x.id());
    return push(x, input_meta(t));
  }
  int inputs() const { return inputs_; }
  bool is_input(const Tensor& t) const {
    return std::find(input_ids_.begin(), input_ids_.end(), t.id()) != input_ids_.end();
  }
  static constexpr int kMaxInputs = 10;

  Val& push(Tensor t, const Meta& m) {
    pool_.push_back(Val{t, m, 0});
    return pool_.back();
  }
  std::vector<Val>& pool() { return pool_; }

  // A constant of dtype t (scalar, broadcast where used).
  Val constant(DType t, double magnitude_lo = 0.25, double magnitude_hi = 2,
               bool allow_negative = true) {
    Meta m;
    double v = 0;
    if (is_float(t)) {
      v = std::round(std::uniform_real_distribution<double>(magnitude_lo, magnitude_hi)(rng_) *
                     64) /
          64;
      v = std::max(v, magnitude_lo);
      if (allow_negative && chance(0.3)) v = -v;
      v = kiln::compiler::round_to_dtype(v, t);
    } else if (is_int(t)) {
      v = static_cast<double>(uniform(1, 5)) * (allow_negative && chance(0.3) ? -1 : 1);
    } else {
      v = chance(0.5) ? 1 : 0;
    }
    m.hi = m.lo = std::fabs(v);
    m.pos = v > 0;
    const Tensor c = kiln::constant(v, t);
    return Val{c, m, 0};
  }

  // An operand satisfying `pred`: often one of the latest values (deep
  // chains), else any; nullptr when none.
  Val* pick(const std::function<bool(const Val&)>& pred) {
    std::vector<size_t> ok;
    for (size_t i = 0; i < pool_.size(); ++i) {
      if (pred(pool_[i])) ok.push_back(i);
    }
    if (ok.empty()) return nullptr;
    // Values of the focus dtype first, where there are any.
    std::vector<size_t> focus;
    for (size_t k : ok) {
      if (pool_[k].t.dtype() == focus_dtype_) focus.push_back(k);
    }
    if (!focus.empty() && (focused_draw_ || chance(0.5))) ok = focus;
    // A focus entry half the time on exact values (16-bit values have room
    // in their tolerance for few inexact ops).
    if (focused_draw_ && chance(0.5)) {
      std::vector<size_t> exact;
      for (size_t k : ok) {
        if (pool_[k].m.exact) exact.push_back(k);
      }
      if (!exact.empty()) ok = exact;
    }
    // Deep chains from the latest values, few dead ends from the unread
    // ones, and any value at all.
    std::vector<size_t> unread;
    for (size_t k : ok) {
      if (pool_[k].uses == 0) unread.push_back(k);
    }
    const double r = std::uniform_real_distribution<double>(0, 1)(rng_);
    size_t i = 0;
    if (r < 0.3) {
      const size_t recent = std::min<size_t>(ok.size(), 3);
      i = ok[ok.size() - 1 - static_cast<size_t>(uniform(0, static_cast<int64_t>(recent) - 1))];
    } else if (r < 0.75 && !unread.empty()) {
      i = choose(unread);
    } else {
      i = choose(ok);
    }
    return &pool_[i];
  }

  // A second operand for `a`: a pool value of a's dtype whose shape
  // broadcasts with it, a constant, or a new input.
  std::optional<Val> partner(const Val& a, const std::function<bool(const Val&)>& pred) {
    const DType t = a.t.dtype();
    const Shape as = a.t.shape();
    if (chance(t == DType::boolean ? 0.4 : 0.2)) {
      Val c = constant(t);
      if (pred(c)) return c;
    }
    if (inputs_ < kMaxInputs && chance(0.15)) {
      const Shape s = derived_shape();
      if (broadcast(as, s)) {
        Val& x = new_input(t, s);
        if (pred(x)) return x;
      }
    }
    // Rarely the operand itself (x - x is exactly 0, x == x true).
    const bool self_ok = chance(0.1);
    Val* b = pick([&](const Val& v) {
      return v.t.dtype() == t && (self_ok || v.t.id() != a.t.id()) &&
             broadcast(as, v.t.shape()).has_value() && pred(v);
    });
    if (b == nullptr) return std::nullopt;
    return *b;
  }

  // Checks the result's bounds against the dtype's limits and tolerance
  // (no rounding added: for ops that move values, or whose caller added
  // it). Returns false when the op must not be added.
  bool fits(Meta& m, DType t) const {
    if (!m.exact && !is_float(t)) return false;  // integers and bools must be exact
    if (!(m.hi <= max_magnitude(t))) return false;
    if (m.exact) {
      m.ea = m.er = 0;
      return true;
    }
    // The tolerance is no longer what outputs are compared with (their own
    // bounds are), but a ceiling on how loose a bound may grow.
    const auto tol = kiln::compiler::tolerance_for(t);
    return m.ea <= tol.atol && m.er <= 0.5 * tol.rtol;
  }

  // fits() after the result's rounding (rounding_rel): the kernel's error
  // in units of its compute type's unit roundoff, the interpreter's in f64's.
  bool rounded_fits(Meta& m, DType t, double kernel, double interp = 1) const {
    if (!m.exact && is_float(t)) {
      m.er += rounding_rel(t, kernel, interp);
      m.ea += rounding_abs(t, kernel);
    }
    return fits(m, t);
  }

  // Adds the op's result (its bounds already checked by fits()).
  Val& result(Tensor t, const Meta& m, std::initializer_list<const Val*> operands) {
    ++ops_;
    std::vector<int32_t>& parents = parents_[t.id()];
    for (const Val* v : operands) {
      parents.push_back(v->t.id());
      for (auto& p : pool_) {
        if (p.t.id() == v->t.id()) ++p.uses;
      }
    }
    return push(t, m);
  }
  // The values a value was computed from (result's operands).
  std::vector<int32_t>& parents(int32_t id) { return parents_[id]; }

  // ---- the kernels' library math -------------------------------------------
  // How far a kernel's math function may be from the correctly rounded
  // result, in units of its compute type's unit roundoff (relative to the
  // result; an error of n ulps is at most 2n units). Measured on the CPU
  // over every f32 in the generator's ranges: glibc's expf, logf, sinf,
  // cosf within 1.3 units, libmvec's (cpu:x86-64-v3 and -v4) within 5.8
  // (4 ulp documented, 8 units). CUDA documents 1 to 4 ulp (powf), so with
  // device_math every target is held to 16 units (8 ulp), as before.
  double libm_units() const { return o_.device_math ? 16 : 8; }
  // Kiln's own formulas on top of a library call: sigmoid is
  // 1 / (1 + exp(-x)) (exp's error, then two roundings: measured 2.5 units
  // scalar, 4.5 with libmvec); the CPU's tanh is 1 - 2 / (exp(2|x|) + 1)
  // above 0.625 and a polynomial below (measured 2.4 and 3.1 units; with an
  // 8-unit exp at most 7.6).
  double sigmoid_units() const { return libm_units() + 2; }
  double tanh_units() const { return libm_units() + 2; }
  // rsqrt: 1 / sqrtf(x) on the CPU (two roundings), CUDA's rsqrtf (2 ulp).
  // f64 (either way two IEEE operations): 2.
  double rsqrt_units(DType t) const {
    return o_.device_math && compute_type(t) == DType::f32 ? 4 : 2;
  }
  // Division: CUDA's f32 __fdividef (2 ulp), else correctly rounded.
  double div_units(DType t) const {
    return o_.device_math && compute_type(t) == DType::f32 ? 4 : 1;
  }
  // The interpreter's own double math (glibc: within 2 ulp): only matters
  // for f64 results.
  static constexpr double kInterpLibm = 4;
  // gelu computed in f32 (for f32, f16 and bf16 results): the CPU's and
  // CUDA's rational erf (cpu_codegen_support.h), measured within 1.41e-6
  // absolute on the CPU over every f32 with |x| <= 64 (largest near
  // x = 5.2; CUDA's 2-ulp division adds at most a unit of u relative),
  // plus library-math units for its roundings. In f64, the interpreter's
  // formula with libm's erf on either side: erf within its units and the
  // argument's and 1 + erf's roundings (absolute, times |x| / 2), then two
  // products.
  double gelu_abs(DType t, double hi) const {
    if (t == DType::f64)
      return 0.5 * hi * (libm_units() + kInterpLibm + 6) * unit_roundoff(DType::f64);
    return 2e-6;
  }
  double gelu_units(DType t) const { return t == DType::f64 ? 2 : libm_units(); }
  // CUDA's gelu for values rounded to f16 or bf16 (gelu_narrow.h): relative
  // error at most 1.8e-5 (the f16 fit) and 2.3e-4 (bf16), measured on an H200.
  static double gelu_narrow_rel(DType t) { return t == DType::bf16 ? 2.5e-4 : 2e-5; }
  double gelu_rel(DType t) const { return o_.device_math && is_16bit(t) ? gelu_narrow_rel(t) : 0; }

  // ---- guards: ops that make an operand safe for the next one ---------------
  // |v| <= bound (exp's argument, sin's): through tanh or a scale.
  std::optional<Val> tamed(const Val& v, double bound) {
    if (v.m.hi <= bound) return v;
    if (!is_float(v.t.dtype())) return std::nullopt;
    Meta m = v.m;
    if (bound >= 1 && chance(0.5)) {
      m.ea = abs_err(v.m);  // |tanh'| <= 1
      m.er = 0;
      m.hi = 1;
      m.lo = 0;
      m.pos = false;
      m.exact = false;
      if (!rounded_fits(m, v.t.dtype(), tanh_units(), kInterpLibm)) return std::nullopt;
      const Tensor t = kiln::tanh(v.t);
      return result(t, m, {&v});
    }
    const double s = kiln::compiler::round_to_dtype(
        std::exp2(std::floor(std::log2(bound / v.m.hi))), v.t.dtype());
    m.hi = v.m.hi * s;
    m.lo = v.m.lo * s;
    m.ea = v.m.ea * s;  // a power of two: exact, but for subnormals
    if (!m.exact) m.ea += tiny(v.t.dtype());
    if (!fits(m, v.t.dtype())) return std::nullopt;
    const Tensor t = v.t * s;
    return result(t, m, {&v});
  }

  // v >= lo > 0 (log, sqrt, rsqrt, pow's base, a divisor): abs(v) + c or
  // exp of a tamed v.
  std::optional<Val> positive(const Val& v, double min_lo) {
    if (v.m.pos && v.m.lo >= min_lo) return v;
    const DType t = v.t.dtype();
    if (!is_float(t)) return std::nullopt;
    if (chance(0.25)) {
      auto a = tamed(v, 2);
      if (!a) return std::nullopt;
      Meta m;
      m.hi = std::exp(a->m.hi);
      m.lo = std::exp(-a->m.hi);
      m.pos = true;
      m.er = std::expm1(abs_err(a->m));  // exp(x + d) = exp(x) e^d
      m.exact = false;
      if (m.lo < min_lo || !rounded_fits(m, t, libm_units(), kInterpLibm)) return std::nullopt;
      const Tensor e = kiln::exp(a->t);
      return result(e, m, {&*a});
    }
    Meta am = v.m;
    am.pos = v.m.lo > 0;
    const Tensor a = kiln::abs(v.t);
    const Val& av = result(a, am, {&v});
    const Val av_copy = av;
    const Val c = constant(t, std::max(min_lo, 0.5), 1.0, false);
    const double cv = c.m.hi;
    Meta m;
    m.hi = av_copy.m.hi + cv;
    m.lo = av_copy.m.lo + cv;
    m.pos = true;
    // Same-sign terms: |v| <= |v| + c, so the relative part stays relative.
    m.ea = av_copy.m.ea;
    m.er = av_copy.m.er;
    m.exact = av_copy.m.exact;
    if (!rounded_fits(m, t, 1)) return std::nullopt;
    const Tensor s = av_copy.t + c.t;
    return result(s, m, {&av_copy});
  }

  // ---- generic entries ---------------------------------------------------------
  // A pointwise unary float op: `prepare` makes the operand safe, `model`
  // gives the result's bounds before its rounding, and returns the kernel's
  // error in units of the compute type (rounded_fits), and the
  // interpreter's in f64's in `interp` (1 unless set).
  bool unary_float(const std::function<Tensor(Tensor)>& op,
                   const std::function<std::optional<Val>(const Val&)>& prepare,
                   const std::function<double(const Meta&, DType, Meta&, double&)>& model) {
    Val* x = pick([](const Val& v) { return is_float(v.t.dtype()); });
    if (x == nullptr) return false;
    const Val xv = *x;
    auto p = prepare(xv);
    if (!p) return false;
    Meta m;
    m.exact = false;
    double interp = 1;
    const double kernel = model(p->m, p->t.dtype(), m, interp);
    if (!rounded_fits(m, p->t.dtype(), kernel, interp)) return false;
    const Tensor t = op(p->t);
    result(t, m, {&*p});
    return true;
  }

  std::vector<Val> pool_;
  std::vector<int64_t> syms_;      // maximum of each symbol
  std::vector<int64_t> sym_mins_;  // minimum of each symbol
  Shape full_;

  // The graph API's handle of symbol `index` (for shapes the entries build).
  static kiln::DimArg dim_arg(const Dim& d) {
    return d.is_constant() ? kiln::DimArg(d.value) : kiln::DimArg(sym_handle(d.sym));
  }

 private:
  static kiln::SymDim sym_handle(int32_t index);

  std::mt19937_64 rng_;
  RandomGraphOptions o_;
  int ops_ = 0;
  int inputs_ = 0;
  DType focus_dtype_ = DType::f32;
  bool focused_draw_ = false;
  std::vector<int32_t> input_ids_;
  std::map<int32_t, std::vector<int32_t>> parents_;
};

kiln::SymDim Builder::sym_handle(int32_t index) {
  return g_sym_handles->at(static_cast<size_t>(index));
}

// ---- the op table ---------------------------------------------------------------
// One entry per op of the graph API (composites included). A new op is one
// more entry: pick operands with Builder::pick/partner, make them safe with
// tamed/positive, state the result's bounds, check them with fits(), then
// call the graph API and record the result.

bool is_numeric(const Val& v) { return v.t.dtype() != DType::boolean; }

// Binary arithmetic over float or integer operands.
bool arithmetic(Builder& b, kiln::ir::Op op) {
  Val* ap = b.pick(is_numeric);
  if (ap == nullptr) return false;
  const Val a = *ap;
  const DType t = a.t.dtype();
  const bool fl = is_float(t);
  if ((op == kiln::ir::Op::div || op == kiln::ir::Op::pow) && !fl) return false;
  std::optional<Val> bo = b.partner(a, [](const Val&) { return true; });
  if (!bo) return false;
  Val bv = *bo;
  const Meta& x = a.m;
  Meta m;
  double kernel = 1;  // correctly rounded
  const bool exact_inputs = x.exact && bv.m.exact;
  switch (op) {
    case kiln::ir::Op::add:
    case kiln::ir::Op::sub: {
      const Meta& y = bv.m;
      m.hi = x.hi + y.hi;
      const bool same_sign = op == kiln::ir::Op::add && x.pos && y.pos;
      if (same_sign) {
        m.lo = x.lo + y.lo;
        m.pos = true;
        m.ea = x.ea + y.ea;
        m.er = std::max(x.er, y.er);
      } else {
        m.ea = abs_err(x) + abs_err(y);
      }
      // Correctly rounded, so exact on exact operands (an exact f32 operand
      // is never a product, so no FMA contraction changes it).
      m.exact = exact_inputs;
      break;
    }
    case kiln::ir::Op::mul: {
      // (x + dx)(y + dy) - xy = x dy + y dx + dx dy, |dx| <= ax + rx |x|.
      const Meta& y = bv.m;
      m.hi = x.hi * y.hi;
      m.lo = x.lo * y.lo;
      m.pos = x.pos && y.pos;
      m.er = x.er + y.er + x.er * y.er;
      m.ea = x.ea * y.hi + y.ea * x.hi + x.ea * y.ea + x.ea * y.er * y.hi + y.ea * x.er * x.hi;
      // f32/f64 products may be contracted into an FMA (-ffp-contract=fast),
      // which skips the product's rounding (the bound counts it anyway);
      // 16-bit products are exact in f32 and rounded on their own.
      m.exact = exact_inputs && !(t == DType::f32 || t == DType::f64);
      break;
    }
    case kiln::ir::Op::div: {
      auto d = b.positive(bv, 0.5);
      if (!d || !b.broadcast(a.t.shape(), d->t.shape())) return false;
      bv = *d;
      const Meta& y = bv.m;
      m.hi = x.hi / y.lo;
      m.lo = x.lo / y.hi;
      m.pos = x.pos;
      // (x + dx) / (y + dy) - x / y = (dx - q dy) / (y + dy), q = x / y.
      const double shrink = 1 - y.er - y.ea / y.lo;
      if (!(shrink > 0.5)) return false;
      m.er = (x.er + y.er) / shrink;
      m.ea = (x.ea / y.lo + y.ea * x.hi / (y.lo * y.lo)) / shrink;
      m.exact = exact_inputs && !b.options().device_math;
      kernel = b.div_units(t);
      break;
    }
    case kiln::ir::Op::maximum:
    case kiln::ir::Op::minimum: {
      const Meta& y = bv.m;
      m.hi = std::max(x.hi, y.hi);
      m.pos = x.pos && y.pos;
      m.lo = m.pos ? std::min(x.lo, y.lo) : 0;
      m.ea = std::max(x.ea, y.ea);
      m.er = std::max(x.er, y.er);
      m.exact = exact_inputs;
      break;
    }
    case kiln::ir::Op::pow: {
      auto base = b.positive(a, 0.25);
      if (!base) return false;
      // The exponent: a constant, or a tensor tamed to [-2, 2].
      std::optional<Val> e;
      if (b.chance(0.6)) {
        static const std::vector<double> kExponents = {-1, -0.5, 0.5, 2, 3, 1.5};
        const double ev = b.choose(kExponents);
        const Tensor c = kiln::constant(ev, t);
        Meta cm;
        cm.hi = cm.lo = std::fabs(ev);
        cm.pos = ev > 0;
        e = Val{c, cm, 0};
      } else {
        e = b.tamed(bv, 2);
      }
      if (!e || !b.broadcast(base->t.shape(), e->t.shape())) return false;
      const Meta& bm = base->m;
      const double big = std::max({bm.hi, 1.0 / bm.lo, 1.0});
      m.hi = std::pow(big, e->m.hi);
      m.lo = 1.0 / m.hi;
      m.pos = true;
      // b'^e' / b^e = exp(e' log b' - e log b): |e| |log(b'/b)| + |e' - e| |log b'|.
      const double rb = rel_err(bm);
      if (!(rb < 0.5)) return false;
      const double log_ratio = -std::log1p(-rb);
      m.er = std::expm1(e->m.hi * log_ratio + abs_err(e->m) * (std::log(big) + log_ratio));
      m.exact = false;
      if (!b.rounded_fits(m, t, b.libm_units(), Builder::kInterpLibm)) return false;
      const Tensor r = kiln::pow(base->t, e->t);
      b.result(r, m, {&*base, &*e});
      return true;
    }
    default:
      return false;
  }
  if (!fl) {
    if (!exact_inputs) return false;
    m.exact = true;
  }
  if (!b.broadcast(a.t.shape(), bv.t.shape())) return false;
  const bool rounds = op != kiln::ir::Op::maximum && op != kiln::ir::Op::minimum;
  if (!(rounds ? b.rounded_fits(m, t, kernel) : b.fits(m, t))) return false;
  Tensor r = a.t;
  switch (op) {
    case kiln::ir::Op::add:
      r = b.chance(0.5) ? a.t + bv.t : kiln::add(a.t, bv.t);
      break;
    case kiln::ir::Op::sub:
      r = b.chance(0.5) ? a.t - bv.t : kiln::sub(a.t, bv.t);
      break;
    case kiln::ir::Op::mul:
      r = b.chance(0.5) ? a.t * bv.t : kiln::mul(a.t, bv.t);
      break;
    case kiln::ir::Op::div:
      r = b.chance(0.5) ? a.t / bv.t : kiln::div(a.t, bv.t);
      break;
    case kiln::ir::Op::maximum:
      r = kiln::maximum(a.t, bv.t);
      break;
    case kiln::ir::Op::minimum:
      r = kiln::minimum(a.t, bv.t);
      break;
    default:
      return false;
  }
  b.result(r, m, {&a, &bv});
  return true;
}

// Comparisons read exact operands only: a last-bit difference would flip them.
bool comparison(Builder& b, kiln::ir::Op op) {
  const bool equality = op == kiln::ir::Op::eq || op == kiln::ir::Op::ne;
  Val* ap = b.pick([&](const Val& v) { return v.m.exact && (equality || is_numeric(v)); });
  if (ap == nullptr) return false;
  const Val a = *ap;
  std::optional<Val> bo = b.partner(a, [](const Val& v) { return v.m.exact; });
  if (!bo) return false;
  // eq against itself (through a broadcast) is true, so not always false.
  if (equality && b.chance(0.2)) bo = a;
  const auto shape = b.broadcast(a.t.shape(), bo->t.shape());
  if (!shape) return false;
  Meta m;
  m.hi = 1;
  Tensor r = a.t;
  switch (op) {
    case kiln::ir::Op::eq:
      r = kiln::eq(a.t, bo->t);
      break;
    case kiln::ir::Op::ne:
      r = kiln::ne(a.t, bo->t);
      break;
    case kiln::ir::Op::lt:
      r = b.chance(0.5) ? a.t < bo->t : kiln::lt(a.t, bo->t);
      break;
    case kiln::ir::Op::le:
      r = b.chance(0.5) ? a.t <= bo->t : kiln::le(a.t, bo->t);
      break;
    case kiln::ir::Op::gt:
      r = b.chance(0.5) ? a.t > bo->t : kiln::gt(a.t, bo->t);
      break;
    case kiln::ir::Op::ge:
      r = b.chance(0.5) ? a.t >= bo->t : kiln::ge(a.t, bo->t);
      break;
    default:
      return false;
  }
  b.result(r, m, {&a, &*bo});
  return true;
}

// Casts: any dtype to any other where the interpreter and the kernels agree
// bit for bit, or within the target's tolerance (float to narrower float).
bool cast_op(Builder& b) {
  Val* xp = b.pick([](const Val&) { return true; });
  if (xp == nullptr) return false;
  const Val x = *xp;
  const DType from = x.t.dtype();
  DType to = b.random_dtype();
  if (to == from) to = is_float(from) ? DType::f32 : DType::f64;
  if (to == from) to = DType::f16;
  Meta m = x.m;
  if (is_float(to)) {
    if (!is_float(from)) {
      // Integers convert exactly while they fit the significand.
      const double limit = to == DType::bf16 ? 256 : to == DType::f16 ? 2048 : 1 << 24;
      if (x.m.hi > limit) return false;
      m.exact = true;
    }
    // Narrowing rounds the same way on both sides (nearest even), so an
    // exact value stays exact; an inexact one may round to the neighbour
    // (rounding_rel's two roundings; from f64 a kernel rounds to f32 first,
    // and to bf16 the interpreter too). Widening moves the value unchanged,
    // but for f16's narrower exponent range (subnormals).
    // But f64 to f16: the kernels round to f32 and then to f16, the
    // interpreter straight to f16, and the two differ by an ulp where the
    // f32 rounding lands on a tie of f16 (1 in 16,000 random values; found
    // by these bounds, docs/testing.md): an exact value is not exact there.
    if (from == DType::f64 && to == DType::f16 && m.exact) {
      m.exact = false;
      m.ea = m.er = 0;
    }
    if (!m.exact && is_float(from)) {
      if (unit_roundoff(to) > unit_roundoff(from)) {
        m.er += rounding_rel(to, from != DType::f64 ? 0 : is_16bit(to) ? 2 : 1, 0);
      }
      if (x.m.f32_gelu && is_16bit(to) && b.options().device_math) {
        m.er += Builder::gelu_narrow_rel(DType::bf16);
      }
      m.f32_gelu = false;
      m.ea += tiny(to);
    }
    if (!b.fits(m, to)) return false;
  } else {
    // To an integer or bool: truncation and != 0 are discontinuous, so only
    // from exact values.
    if (!x.m.exact) return false;
    m = Meta{};
    if (to == DType::boolean) {
      m.hi = 1;
    } else {
      m.hi = std::floor(x.m.hi);
      if (!b.fits(m, to)) return false;
    }
  }
  const Tensor r = kiln::cast(x.t, to);
  b.result(r, m, {&x});
  return true;
}

bool where_op(Builder& b) {
  Val* cp = b.pick([](const Val& v) { return v.t.dtype() == DType::boolean && v.m.exact; });
  if (cp == nullptr) return false;
  const Val c = *cp;
  Val* ap = b.pick([&](const Val& v) { return b.broadcast(c.t.shape(), v.t.shape()).has_value(); });
  if (ap == nullptr) return false;
  const Val a = *ap;
  const auto ca = b.broadcast(c.t.shape(), a.t.shape());
  std::optional<Val> bo =
      b.partner(a, [&](const Val& v) { return b.broadcast(*ca, v.t.shape()).has_value(); });
  if (!bo) return false;
  Meta m;
  m.hi = std::max(a.m.hi, bo->m.hi);
  m.pos = a.m.pos && bo->m.pos;
  m.lo = std::min(a.m.lo, bo->m.lo);
  m.ea = std::max(a.m.ea, bo->m.ea);
  m.er = std::max(a.m.er, bo->m.er);
  m.exact = a.m.exact && bo->m.exact;
  if (!b.fits(m, a.t.dtype())) return false;
  const Tensor r = kiln::where(c.t, a.t, bo->t);
  b.result(r, m, {&c, &a, &*bo});
  return true;
}

// The axes a reduction of `x` runs over: one, drawn from [-rank, rank), or
// (a quarter of the time, rank >= 2) two distinct ones; and the most values
// one output combines.
struct ReductionAxes {
  std::vector<int> axes;
  double count = 1;
};

ReductionAxes draw_axes(Builder& b, const Tensor& x, bool single) {
  const auto rank = static_cast<int>(x.rank());
  ReductionAxes r;
  const int first = static_cast<int>(b.uniform(0, rank - 1));
  r.axes.push_back(first);
  if (!single && rank >= 2 && b.chance(0.25)) {
    int second = static_cast<int>(b.uniform(0, rank - 2));
    if (second >= first) ++second;
    r.axes.push_back(second);
  }
  for (int& a : r.axes) {
    r.count *= static_cast<double>(b.max_of(x.shape()[static_cast<size_t>(a)]));
    if (b.chance(0.5)) a -= rank;  // negative axes count from the end
  }
  return r;
}

// Reductions over any axis or two: sum, mean, max, min, prod.
bool reduction(Builder& b, kiln::ir::Op op) {
  const bool mean = op == kiln::ir::Op::reduce_mean;
  Val* xp = b.pick([&](const Val& v) {
    return v.t.rank() >= 1 && (mean ? is_float(v.t.dtype()) : is_numeric(v));
  });
  if (xp == nullptr) return false;
  Val x = *xp;
  const DType t = x.t.dtype();
  ReductionAxes ra = draw_axes(b, x.t, false);
  const Shape xs = x.t.shape();
  if (op == kiln::ir::Op::reduce_prod && ra.count > 12) {
    // A product over one short axis instead.
    std::vector<int> short_axes;
    for (size_t a = 0; a < xs.size(); ++a) {
      if (b.max_of(xs[a]) <= 12) short_axes.push_back(static_cast<int>(a));
    }
    if (short_axes.empty()) return false;
    ra.axes = {b.choose(short_axes)};
    ra.count = static_cast<double>(b.max_of(xs[static_cast<size_t>(ra.axes[0])]));
  }
  const double c = ra.count;
  // Float sums and products grow with c: their operand is tamed first where
  // the result would pass the dtype's magnitude.
  if (is_float(t) && (op == kiln::ir::Op::reduce_sum || op == kiln::ir::Op::reduce_prod)) {
    const double cap = op == kiln::ir::Op::reduce_sum
                           ? max_magnitude(t) / c
                           : std::min(2.0, std::pow(max_magnitude(t), 1.0 / c));
    if (x.m.hi > cap) {
      auto tx = b.tamed(x, cap);
      if (!tx) return false;
      x = *tx;
    }
  }
  const bool keepdim = b.chance(0.5);
  Meta m = x.m;
  // The kernels accumulate in the compute type (f32 for 16-bit values; the
  // CPU's standalone reductions in double), in any order (sequence, lanes,
  // a tree of warps); the interpreter in double, rounded once.
  const DType acc = compute_type(t);
  const double accumulate =
      unit_roundoff(acc) + unit_roundoff(DType::f64);  // per partial sum, both sides
  switch (op) {
    case kiln::ir::Op::reduce_sum:
    case kiln::ir::Op::reduce_mean:
      if (!is_float(t)) {
        m.hi = x.m.hi * c;
        m.lo = x.m.lo;
        if (!b.fits(m, t)) return false;
        break;
      }
      m.exact = false;
      if (x.m.pos) {
        // Same-sign terms: every partial sum is below the total, so each of
        // the c - 1 additions errs by at most u of it (relative), and the
        // terms' errors add up: c ea + er |sum|.
        m.hi = x.m.hi * c;
        m.lo = x.m.lo * c;
        m.ea = x.m.ea * c;
        m.er = x.m.er + (c - 1) * accumulate;
      } else {
        // Mixed signs: partial sums of k terms up to k hi (partial_sums).
        m.hi = x.m.hi * c;
        m.lo = 0;
        m.pos = false;
        m.ea = c * abs_err(x.m) + accumulate * x.m.hi * partial_sums(c);
        m.er = 0;
      }
      if (op == kiln::ir::Op::reduce_mean) {
        // The sum divided by c: bounds and errors shrink by c, one more
        // (correctly rounded) division.
        m.hi /= c;
        m.lo /= c;
        m.ea /= c;
        if (!b.rounded_fits(m, t, 1, 1)) return false;
      } else if (!b.rounded_fits(m, t, 0, 0)) {
        return false;
      }
      break;
    case kiln::ir::Op::reduce_max:
    case kiln::ir::Op::reduce_min:
      if (!b.fits(m, t)) return false;
      break;
    case kiln::ir::Op::reduce_prod:
      // Products grow or vanish geometrically: only a few factors of
      // magnitude at most 2, where relative errors add up (signs do not
      // matter to them); integers only while the product stays exact.
      if (c > 12) return false;
      if (is_float(t)) {
        m.hi = std::pow(x.m.hi, c);
        m.lo = std::pow(x.m.lo, c);
        m.pos = x.m.pos;
        // c - 1 roundings in the accumulator, on either side (relative to
        // the partial products, so to the product); the factors' errors
        // relative, where they are (|x| >= lo > 0), else absolute:
        // |prod(x + d) - prod(x)| <= (hi + A)^c - hi^c.
        const double rounding = std::pow(1 + accumulate, c - 1) - 1;
        const double rel = rel_err(x.m);
        if (rel < 0.01) {
          m.ea = 0;
          m.er = std::pow(1 + rel, c) * (1 + rounding) - 1;
        } else {
          m.ea = (std::pow(x.m.hi + abs_err(x.m), c) - m.hi) * (1 + rounding);
          m.er = rounding;
        }
        m.exact = false;
        if (!b.rounded_fits(m, t, 0, 0)) return false;
      } else {
        if (std::pow(std::max(x.m.hi, 1.0), c) > 1e9) return false;
        m.hi = std::pow(std::max(x.m.hi, 1.0), c);
        m.lo = 0;
        if (!b.fits(m, t)) return false;
      }
      break;
    default:
      return false;
  }
  Tensor r = x.t;
  switch (op) {
    case kiln::ir::Op::reduce_sum:
      r = kiln::sum(x.t, ra.axes, keepdim);
      break;
    case kiln::ir::Op::reduce_mean:
      r = kiln::mean(x.t, ra.axes, keepdim);
      break;
    case kiln::ir::Op::reduce_max:
      r = kiln::max(x.t, ra.axes, keepdim);
      break;
    case kiln::ir::Op::reduce_min:
      r = kiln::min(x.t, ra.axes, keepdim);
      break;
    case kiln::ir::Op::reduce_prod:
      r = kiln::prod(x.t, ra.axes, keepdim);
      break;
    default:
      return false;
  }
  b.result(r, m, {&x});
  return true;
}

// argmax over one axis: an index, so its input must be bit-exact on every
// target (a rounding difference could move a tie), as comparisons require.
bool argmax_op(Builder& b) {
  Val* xp = b.pick([](const Val& v) { return v.t.rank() >= 1 && v.m.exact && is_numeric(v); });
  if (xp == nullptr) return false;
  const Val x = *xp;
  const ReductionAxes ra = draw_axes(b, x.t, true);
  Meta m;
  m.hi = ra.count - 1;
  m.lo = 0;
  m.pos = true;
  m.exact = true;
  if (!b.fits(m, DType::i64)) return false;
  const Tensor r = kiln::argmax(x.t, ra.axes[0], b.chance(0.5));
  b.result(r, m, {&x});
  return true;
}

// matmul(x, y) with y a new input [.., K, N]: x's batch dims or none, N a
// small constant or one of x's dims. Magnitudes add up over K, so only
// short contractions of small values fit the dtype's bounds (mostly K <= 16).
bool matmul_op(Builder& b) {
  Val* xp = b.pick([](const Val& v) {
    const DType t = v.t.dtype();
    return v.t.rank() >= 2 && (t == DType::f32 || t == DType::f16 || t == DType::bf16);
  });
  if (xp == nullptr) return false;
  Val x = *xp;
  const DType t = x.t.dtype();
  const Shape xs = x.t.shape();
  const Dim k = xs.back();
  const double kmax = static_cast<double>(b.max_of(k));
  // y: a value [K, N] or [x's batch.., K, N] of the pool, or a new input.
  const Shape batch(xs.begin(), xs.end() - 2);
  Val* yp = b.chance(0.5) || b.inputs() >= Builder::kMaxInputs ? b.pick([&](const Val& v) {
    const Shape& s = v.t.shape();
    return v.t.dtype() == t && s.size() >= 2 && s[s.size() - 2] == k &&
           (s.size() == 2 || Shape(s.begin(), s.end() - 2) == batch);
  })
                                                               : nullptr;
  if (yp == nullptr && b.inputs() >= Builder::kMaxInputs) return false;
  std::optional<Val> yv;
  Shape ys;
  if (yp != nullptr) {
    yv = *yp;
    ys = yv->t.shape();
  } else {
    std::vector<Dim> n_choices = {Dim::constant(1), Dim::constant(3), Dim::constant(8),
                                  Dim::constant(17)};
    for (const Dim& d : xs) n_choices.push_back(d);
    if (xs.size() > 2 && b.chance(0.5)) ys = batch;
    ys.push_back(k);
    ys.push_back(b.choose(n_choices));
  }
  const Dim n = ys.back();
  Shape out(xs.begin(), xs.end() - 1);
  out.push_back(n);
  if (b.max_numel(out) > b.options().max_numel || b.max_numel(ys) > b.options().max_numel) {
    return false;
  }
  const Meta ym = yv ? yv->m : Builder::input_meta(t);
  // x is tamed first where the sum of K products would pass the dtype's
  // magnitude, or its rounding (below) half the atol.
  const double per_step =
      (is_16bit(t) ? 2 : 1) * unit_roundoff(DType::f32) + unit_roundoff(DType::f64);
  const double steps = partial_sums(kmax) + 1 + kmax;
  const double cap =
      std::min(max_magnitude(t) / (kmax * ym.hi),
               0.5 * kiln::compiler::tolerance_for(t).atol / (per_step * ym.hi * steps));
  if (x.m.hi > cap) {
    auto tx = b.tamed(x, cap);
    if (!tx) return false;
    x = *tx;
  }
  Meta m;
  m.hi = kmax * x.m.hi * ym.hi;
  m.lo = 0;
  m.pos = false;
  m.exact = false;
  // x's and y's errors through every product, and the accumulation's
  // rounding: K products (exact for 16-bit operands, else rounded unless
  // fused into an FMA) and K partial sums up to k x.hi y.hi (partial_sums),
  // in f32. For 16-bit operands a GPU's tensor cores may truncate where they
  // add, which errs by up to twice as much. The interpreter sums exact
  // products in double.
  const double ax = abs_err(x.m);
  const double ay = abs_err(ym);
  m.ea = kmax * (ax * ym.hi + ay * x.m.hi + ax * ay) + per_step * x.m.hi * ym.hi * steps;
  m.er = 0;
  // One more rounding in the kernel where a scale (x * c or x / c after the
  // matmul) is folded into its epilogue.
  if (!b.rounded_fits(m, t, 1)) return false;
  const Val y = yv ? *yv : b.new_input(t, ys);
  const Tensor r = kiln::matmul(x.t, y.t);
  b.result(r, m, {&x, &y});
  return true;
}

// The composites (graph_api.cpp) compute in f32 (f64 for f64) and cast the
// result back; the interpreter rounds every step to f32 too. Each step's
// rounding, kernel and interpreter together, in units of u(compute type):
// a correctly rounded op 2 (1 + 1: f64's interpreter computes as the
// kernel does, f32's rounds a double), a library call its units plus the
// interpreter's.
struct CompositeUnits {
  bool f64;
  double u;      // the compute type's unit roundoff
  double op;     // + - * and mean's division
  double div;    // softmax's division
  double libm;   // exp, log
  double rsqrt;  // rsqrt
  // A sum of c same-sign terms, relative: c - 1 roundings in the kernel,
  // and the interpreter's (c - 1 in f64, else one rounding to f32).
  double sum(double c) const { return f64 ? 2 * (c - 1) : c; }
  // A mean of c mixed-sign terms of magnitude <= 1, absolute: the partial
  // sums' roundings (/ c), the interpreter's rounding and the divisions.
  double mixed_mean(double c) const {
    return (f64 ? 2 : 1) * partial_sums(c) / c + (f64 ? 0 : 1) + op;
  }
};

CompositeUnits composite_units(const Builder& b, DType io) {
  CompositeUnits c;
  c.f64 = io == DType::f64;
  c.u = unit_roundoff(compute_type(io));
  c.op = 2;
  c.div = b.div_units(io) + 1;
  c.libm = b.libm_units() + (c.f64 ? Builder::kInterpLibm : 1);
  c.rsqrt = b.rsqrt_units(io) + (c.f64 ? 2 : 1);
  return c;
}

// The rounding of a composite's result: its last f32 step (already in the
// composite's model) and, for 16-bit io, the cast back (two roundings to
// 16 bits that may land on neighbours).
bool composite_fits(const Builder& b, Meta& m, DType io) {
  if (is_16bit(io)) {
    m.er += 2 * unit_roundoff(io);
    m.ea += rounding_abs(io, 0);
  } else {
    m.ea += rounding_abs(io, 1);
  }
  return b.fits(m, io);
}

// softmax = e / sum(e), e = exp(x - max(x)); the max cancels, so with
// d_i = x_i - max: y_i' / y_i = exp(dd_i - sum_j s_j dd_j) (1 + exp's and
// the division's roundings) / (1 + the sum's): the input's error and the
// subtraction's rounding count twice, exp's rounding twice, the sum's
// (c - 1 additions of positive terms, both sides) once, the division once.
bool softmax_op(Builder& b) {
  Val* xp = b.pick([](const Val& v) { return is_float(v.t.dtype()) && v.t.rank() >= 1; });
  if (xp == nullptr) return false;
  const Val x = *xp;
  const ReductionAxes ra = draw_axes(b, x.t, true);
  const double c = ra.count;
  const DType io = x.t.dtype();
  const CompositeUnits k = composite_units(b, io);
  Meta m;
  m.hi = 1;
  m.pos = true;
  m.lo = std::exp(-2 * x.m.hi) / c;
  const double dd = abs_err(x.m) + k.op * k.u * 2 * x.m.hi;  // |d| <= 2 hi
  m.er = std::expm1(2 * dd) + (2 * k.libm + k.sum(c) + k.div) * k.u;
  m.exact = false;
  if (!composite_fits(b, m, io)) return false;
  const Tensor r = kiln::softmax(x.t, ra.axes[0]);
  b.result(r, m, {&x});
  return true;
}

// log_softmax = d - log(sum(exp(d))), d = x - max(x): at most 0, down to
// -(2 max|x| + log c); the max cancels, so the input's error and the
// subtraction's rounding count twice (absolute), exp's and the sum's
// roundings are relative errors of the sum, so absolute ones of its log,
// log's own is relative to log(sum) <= log c, and the last subtraction
// rounds once more.
bool log_softmax_op(Builder& b) {
  Val* xp = b.pick([](const Val& v) { return is_float(v.t.dtype()) && v.t.rank() >= 1; });
  if (xp == nullptr) return false;
  const Val x = *xp;
  const ReductionAxes ra = draw_axes(b, x.t, true);
  const double c = ra.count;
  const DType io = x.t.dtype();
  const CompositeUnits k = composite_units(b, io);
  Meta m;
  m.hi = 2 * x.m.hi + std::log(c);
  m.lo = 0;
  m.pos = false;
  const double dd = abs_err(x.m) + k.op * k.u * 2 * x.m.hi;
  const double sum_rel = (k.libm + k.sum(c)) * k.u;
  m.ea = 2 * dd - std::log1p(-sum_rel) + k.libm * k.u * std::log(c);
  m.er = k.op * k.u;
  m.exact = false;
  if (!composite_fits(b, m, io)) return false;
  const Tensor r = kiln::log_softmax(x.t, ra.axes[0]);
  b.result(r, m, {&x});
  return true;
}

// The normalized row is amplified by up to 1/sqrt(eps) where a row barely
// varies; eps comes from a list and the error model picks what passes.
double random_eps(Builder& b) {
  static const std::vector<double> kEps = {1e-5, 1e-3, 1e-2, 0.1, 1.0};
  return b.choose(kEps);
}

std::optional<Val> norm_param(Builder& b, const Val& x, bool same_dtype) {
  const Shape xs = x.t.shape();
  Val* w = b.pick([&](const Val& v) {
    return is_float(v.t.dtype()) && (!same_dtype || v.t.dtype() == x.t.dtype()) &&
           b.broadcast(xs, v.t.shape()).has_value() && v.m.hi <= 4;
  });
  if (w != nullptr && b.chance(0.6)) return *w;
  if (b.inputs() >= Builder::kMaxInputs) return std::nullopt;
  Shape s = {xs.back()};
  if (b.chance(0.2)) s = {Dim::constant(1)};
  return b.new_input(same_dtype ? x.t.dtype() : b.random_float_dtype(), s);
}

// The error of a weight or bias cast to the compute type (exact, but for
// f64 to f32: one rounding on either side, or a neighbour).
Meta cast_to(const Meta& w, DType from, DType ct) {
  Meta m = w;
  if (from == DType::f64 && ct == DType::f32 && !w.exact) m.er += 2 * unit_roundoff(DType::f32);
  return m;
}

// layernorm: y = d r, d = x - mean(x), r = rsqrt(mean(d^2) + eps), then
// y w + b. With |x's error| <= A, sigma^2 = mean(d^2) and r <= 1/sqrt(eps):
// d's error is at most 2A plus the subtraction's rounding plus the mean's
// (a shift of the whole row); the variance moves by at most
// 2 sigma (A + the subtraction's rounding) (a shift cancels: mean(d) = 0)
// plus its own rounding, so r by r^2 sigma (...) (relative) plus rsqrt's;
// |y| <= min(sqrt(c), 2 hi r) and sigma r <= 1.
bool layernorm_op(Builder& b) {
  Val* xp = b.pick([](const Val& v) { return is_float(v.t.dtype()) && v.t.rank() >= 1; });
  if (xp == nullptr) return false;
  const Val x = *xp;
  auto w = norm_param(b, x, false);
  if (!w) return false;
  auto bias = norm_param(b, x, false);
  if (!bias) return false;
  auto s1 = b.broadcast(x.t.shape(), w->t.shape());
  if (!s1 || !b.broadcast(*s1, bias->t.shape())) return false;
  const double eps = random_eps(b);
  const auto c = static_cast<double>(b.max_of(x.t.shape().back()));
  const DType io = x.t.dtype();
  const DType ct = compute_type(io);
  const CompositeUnits k = composite_units(b, io);
  const Meta wm = cast_to(w->m, w->t.dtype(), ct);
  const Meta bm = cast_to(bias->m, bias->t.dtype(), ct);
  const double amp = 1.0 / std::sqrt(eps);
  const double A = abs_err(x.m);
  const double sub = k.op * k.u * 2 * x.m.hi;                // d's rounding
  const double mean_shift = k.u * x.m.hi * k.mixed_mean(c);  // mean's rounding
  const double dd = 2 * A + sub + mean_shift;
  // var's rounding: c squares, their sum, the division, then + eps:
  // relative to var + eps.
  const double var_rel = (k.op + k.sum(c) + k.op + k.op) * k.u;
  const double r_rel = amp * (A + sub) + 0.5 * var_rel + k.rsqrt * k.u;
  const double y_hi = std::min(std::sqrt(c), 2 * x.m.hi * amp);
  // y's error: dd r + |y| r_rel + y's rounding.
  const double y_ea = dd * amp;
  const double y_er = r_rel + k.op * k.u;
  Meta m;
  m.hi = y_hi * wm.hi + bm.hi;
  // y w + b: (y_ea + y_er |y|) |w| + |y| (w.ea + w.er |w|) + b's error, and
  // the product's and the sum's roundings (on at most |y w| + |b|).
  m.ea = y_ea * wm.hi + y_er * y_hi * wm.hi + (y_hi + y_ea + y_er * y_hi) * abs_err(wm) +
         abs_err(bm) + 2 * k.op * k.u * (y_hi * wm.hi + bm.hi);
  m.er = 0;
  m.exact = false;
  if (!composite_fits(b, m, io)) return false;
  const Tensor r = kiln::layernorm(x.t, w->t, bias->t, eps);
  b.result(r, m, {&x, &*w, &*bias});
  return true;
}

// rmsnorm: cast(x r, io) * w, r = rsqrt(mean(x^2) + eps): mean(x^2) moves
// by at most 2 rms A (relative to ms + eps: A r), plus its roundings; y = x r
// by A r + |y| (r's relative error + its rounding); then the cast to io and
// the product with w in io (both rounded: 16-bit values in f32 are exact
// products).
bool rmsnorm_op(Builder& b) {
  Val* xp = b.pick([](const Val& v) { return is_float(v.t.dtype()) && v.t.rank() >= 1; });
  if (xp == nullptr) return false;
  const Val x = *xp;
  auto w = norm_param(b, x, true);
  if (!w || !b.broadcast(x.t.shape(), w->t.shape())) return false;
  const double eps = random_eps(b);
  const auto c = static_cast<double>(b.max_of(x.t.shape().back()));
  const DType io = x.t.dtype();
  const CompositeUnits k = composite_units(b, io);
  const double amp = 1.0 / std::sqrt(eps);
  const double A = abs_err(x.m);
  const double ms_rel = (k.op + k.sum(c) + k.op + k.op) * k.u;  // squares, sum, /c, + eps
  const double r_rel = A * amp + 0.5 * ms_rel + k.rsqrt * k.u;
  const double y_hi = std::min(std::sqrt(c), x.m.hi * amp);
  const double y_ea = A * amp;
  double y_er = r_rel + k.op * k.u;
  if (is_16bit(io)) y_er += 2 * unit_roundoff(io);  // cast(x r, io)
  const Meta& wm = w->m;
  Meta m;
  m.hi = y_hi * wm.hi;
  // (y_ea + y_er |y|)(|w|) + |y| (w.ea + w.er |w|), then the product's
  // rounding in io (composite_fits adds it for 16-bit io: two roundings to
  // 16 bits; in f32 and f64 it is the composite's own).
  m.ea = y_ea * wm.hi + y_hi * wm.ea + y_ea * abs_err(wm) + y_er * y_hi * wm.ea;
  m.er = y_er + wm.er + y_er * wm.er;
  if (!is_16bit(io)) m.er += k.op * k.u;
  m.exact = false;
  if (!composite_fits(b, m, io)) return false;
  const Tensor r = kiln::rmsnorm(x.t, w->t, eps);
  b.result(r, m, {&x, &*w});
  return true;
}

// ---- shape ops: every value moves unchanged, so a result's bounds are its
// operand's (a concat's, those of all its operands).

std::vector<kiln::DimArg> dim_args(const Shape& s) {
  std::vector<kiln::DimArg> out;
  for (const auto& d : s) out.push_back(Builder::dim_arg(d));
  return out;
}

// reshape, squeeze, unsqueeze: insert or remove a dim of 1, merge two
// constant dims, split a constant dim, or flatten a shape of at most one
// symbol; sometimes with -1 for one dim.
bool reshape_op(Builder& b) {
  Val* xp = b.pick([](const Val& v) { return v.t.rank() >= 1; });
  if (xp == nullptr) return false;
  const Val x = *xp;
  const Shape s = x.t.shape();
  const auto rank = static_cast<int64_t>(s.size());
  // The five kinds in a random order: the first that applies.
  auto attempt = [&](int64_t kind) -> std::optional<Tensor> {
    Tensor r = x.t;
    switch (kind) {
      case 0: {  // unsqueeze
        if (rank >= 4) return std::nullopt;
        r = kiln::unsqueeze(x.t, static_cast<int>(b.uniform(-rank - 1, rank)));
        break;
      }
      case 1: {  // squeeze a dim of 1
        std::vector<int> ones;
        for (int64_t i = 0; i < rank; ++i) {
          if (s[static_cast<size_t>(i)].is_one()) ones.push_back(static_cast<int>(i));
        }
        if (ones.empty()) return std::nullopt;
        r = kiln::squeeze(x.t, b.choose(ones) - (b.chance(0.5) ? static_cast<int>(rank) : 0));
        break;
      }
      case 2: {  // merge two adjacent constant dims
        std::vector<size_t> at;
        for (size_t i = 0; i + 1 < s.size(); ++i) {
          if (s[i].is_constant() && s[i + 1].is_constant()) at.push_back(i);
        }
        if (at.empty()) return std::nullopt;
        const size_t i = b.choose(at);
        Shape t(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(i));
        t.push_back(Dim::constant(s[i].value * s[i + 1].value));
        t.insert(t.end(), s.begin() + static_cast<std::ptrdiff_t>(i + 2), s.end());
        std::vector<kiln::DimArg> dims = dim_args(t);
        if (b.chance(0.3)) dims[i] = kiln::DimArg(int64_t{-1});
        r = kiln::reshape(x.t, dims);
        break;
      }
      case 3: {  // split a constant dim into two factors
        if (rank >= 4) return std::nullopt;
        std::vector<size_t> at;
        for (size_t i = 0; i < s.size(); ++i) {
          if (s[i].is_constant() && s[i].value >= 2) at.push_back(i);
        }
        if (at.empty()) return std::nullopt;
        const size_t i = b.choose(at);
        std::vector<int64_t> factors;
        for (int64_t f = 1; f <= s[i].value; ++f) {
          if (s[i].value % f == 0) factors.push_back(f);
        }
        const int64_t f = b.choose(factors);
        Shape t(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(i));
        t.push_back(Dim::constant(f));
        t.push_back(Dim::constant(s[i].value / f));
        t.insert(t.end(), s.begin() + static_cast<std::ptrdiff_t>(i + 1), s.end());
        r = kiln::reshape(x.t, dim_args(t));
        break;
      }
      default: {  // flatten: one constant, or one symbol (times ones)
        int64_t c = 1;
        std::vector<Dim> syms;
        for (const auto& d : s) {
          if (d.is_constant()) {
            c *= d.value;
          } else {
            syms.push_back(d);
          }
        }
        if (syms.size() > 1 || (syms.size() == 1 && c != 1) || rank < 2) return std::nullopt;
        r = b.chance(0.5)
                ? kiln::reshape(x.t, {-1})
                : kiln::reshape(x.t, dim_args({syms.empty() ? Dim::constant(c) : syms[0]}));
        break;
      }
    }
    return r;
  };
  // (An unsqueeze that adds a leading dim is a broadcast, an expand node,
  // so it comes last half the time.)
  std::vector<int64_t> kinds = {0, 1, 2, 3, 4};
  std::shuffle(kinds.begin(), kinds.end(), b.rng());
  if (b.chance(0.5))
    std::stable_partition(kinds.begin(), kinds.end(), [](int64_t k) { return k != 0; });
  // The first that makes a new reshape node: a reshape back to an earlier
  // shape of the chain gives that value, and one that only adds leading
  // dims of 1 is a broadcast (an expand node), taken only if nothing else
  // applies.
  std::optional<Tensor> fallback;
  for (int64_t kind : kinds) {
    auto r = attempt(kind);
    if (!r || r->id() <= x.t.id()) continue;
    const Shape rs = r->shape();
    const bool leading_ones =
        rs.size() > s.size() &&
        std::equal(s.begin(), s.end(), rs.end() - static_cast<std::ptrdiff_t>(s.size())) &&
        std::all_of(rs.begin(), rs.end() - static_cast<std::ptrdiff_t>(s.size()),
                    [](const Dim& d) { return d.is_one(); });
    if (leading_ones) {
      if (!fallback) fallback = r;
      continue;
    }
    b.result(*r, x.m, {&x});
    return true;
  }
  if (!fallback) return false;
  b.result(*fallback, x.m, {&x});
  return true;
}

// expand / broadcast_to: ones stretch to the full shape's dims, new leading
// dims come from it too.
bool expand_op(Builder& b) {
  // A value with room to grow within the element budget.
  Val* xp =
      b.pick([&](const Val& v) { return 2 * b.max_numel(v.t.shape()) <= b.options().max_numel; });
  if (xp == nullptr) return false;
  const Val x = *xp;
  const Shape s = x.t.shape();
  const size_t rank = static_cast<size_t>(b.uniform(
      static_cast<int64_t>(s.size()), std::max<int64_t>(4, static_cast<int64_t>(s.size()))));
  Shape t(rank - s.size(), Dim::constant(1));
  t.insert(t.end(), s.begin(), s.end());
  bool changed = false;
  for (size_t i = 0; i < rank; ++i) {
    if (!t[i].is_one() || !b.chance(0.6)) continue;
    // The full shape's dim at the same place from the right, or a constant.
    const size_t from_right = rank - 1 - i;
    const Dim d = from_right < b.full_.size() ? b.full_[b.full_.size() - 1 - from_right]
                                              : Dim::constant(b.uniform(2, 3));
    if (d.is_one()) continue;
    t[i] = d;
    changed = true;
  }
  if (!changed) {
    // Stretch a dim of 1 to a small constant, if any.
    for (size_t i = 0; i < rank && !changed; ++i) {
      if (t[i].is_one()) {
        t[i] = Dim::constant(b.uniform(2, 3));
        changed = true;
      }
    }
  }
  if (!changed || b.max_numel(t) > b.options().max_numel) return false;
  std::vector<kiln::DimArg> dims = dim_args(t);
  for (size_t i = rank - s.size(); i < rank; ++i) {
    if (t[i] == s[i - (rank - s.size())] && b.chance(0.3)) dims[i] = kiln::DimArg(int64_t{-1});
  }
  const Tensor r = b.chance(0.5) ? kiln::expand(x.t, dims) : kiln::broadcast_to(x.t, dims);
  b.result(r, x.m, {&x});
  return true;
}

// permute / transpose: a random order of the axes, not the identity.
bool permute_op(Builder& b) {
  // A value of rank 2 or more, or a vector with a dim of 1 added.
  Val* xp = b.pick([](const Val& v) { return v.t.rank() >= 1; });
  if (xp == nullptr) return false;
  Val x = *xp;
  if (x.t.rank() == 1) {
    const Val v = x;
    x = b.result(kiln::unsqueeze(v.t, b.chance(0.5) ? 0 : 1), v.m, {&v});
  }
  const auto rank = static_cast<int>(x.t.rank());
  Tensor r = x.t;
  if (b.chance(0.4)) {
    const int a = static_cast<int>(b.uniform(0, rank - 1));
    int c = static_cast<int>(b.uniform(0, rank - 2));
    if (c >= a) ++c;
    r = kiln::transpose(x.t, a - (b.chance(0.3) ? rank : 0), c);
  } else {
    std::vector<int> perm(static_cast<size_t>(rank));
    for (int i = 0; i < rank; ++i) perm[static_cast<size_t>(i)] = i;
    std::shuffle(perm.begin(), perm.end(), b.rng());
    bool identity = true;
    for (int i = 0; i < rank; ++i) identity = identity && perm[static_cast<size_t>(i)] == i;
    if (identity) std::swap(perm[0], perm[1]);
    r = kiln::permute(x.t, perm);
  }
  b.result(r, x.m, {&x});
  return true;
}

// slice along a constant dim: Python's start:stop:step, sometimes counted
// from the end or past it; never empty, never the whole dim.
bool slice_op(Builder& b) {
  Val* xp = b.pick([](const Val& v) {
    for (const auto& d : v.t.shape()) {
      if (d.is_constant() && d.value >= 2) return true;
    }
    return false;
  });
  if (xp == nullptr) return false;
  const Val x = *xp;
  const Shape s = x.t.shape();
  std::vector<int> axes;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i].is_constant() && s[i].value >= 2) axes.push_back(static_cast<int>(i));
  }
  const int axis = b.choose(axes);
  const int64_t d = s[static_cast<size_t>(axis)].value;
  static const std::vector<int64_t> kSteps = {1, 1, 1, 2, 3};
  const int64_t step = b.choose(kSteps);
  const int64_t start = b.uniform(0, d - 1);
  int64_t stop = b.uniform(start + 1, d);
  if (start == 0 && step == 1 && stop == d) stop = d - 1;
  const int64_t start_arg = b.chance(0.3) ? start - d : start;
  const int64_t stop_arg =
      stop == d ? (b.chance(0.5) ? int64_t{1} << 40 : d) : (b.chance(0.3) ? stop - d : stop);
  const int axis_arg = b.chance(0.3) ? axis - static_cast<int>(s.size()) : axis;
  const Tensor r = kiln::slice(x.t, axis_arg, start_arg, stop_arg, step);
  b.result(r, x.m, {&x});
  return true;
}

// concat of two or three values of one dtype that differ only along a
// constant axis (the same value again, or a new input).
bool concat_op(Builder& b) {
  Val* ap = b.pick([](const Val& v) {
    for (const auto& d : v.t.shape()) {
      if (d.is_constant()) return true;
    }
    return false;
  });
  if (ap == nullptr) return false;
  const Val a = *ap;
  const Shape s = a.t.shape();
  std::vector<size_t> axes;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i].is_constant()) axes.push_back(i);
  }
  const size_t axis = b.choose(axes);
  std::vector<Val> parts = {a};
  const auto count = static_cast<size_t>(b.uniform(2, 3));
  while (parts.size() < count) {
    Val* other = b.pick([&](const Val& v) {
      const Shape& vs = v.t.shape();
      if (v.t.dtype() != a.t.dtype() || vs.size() != s.size() || !vs[axis].is_constant())
        return false;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i != axis && !(vs[i] == s[i])) return false;
      }
      return true;
    });
    if (other != nullptr && b.chance(0.7)) {
      parts.push_back(*other);
    } else if (b.inputs() < Builder::kMaxInputs) {
      Shape t = s;
      t[axis] = Dim::constant(b.uniform(1, 5));
      parts.push_back(b.new_input(a.t.dtype(), t));
    } else {
      parts.push_back(a);
    }
  }
  Shape out = s;
  int64_t total = 0;
  for (const Val& p : parts) total += p.t.shape()[axis].value;
  out[axis] = Dim::constant(total);
  if (b.max_numel(out) > b.options().max_numel) return false;
  Meta m = a.m;
  std::vector<Tensor> ts;
  for (const Val& p : parts) {
    m.hi = std::max(m.hi, p.m.hi);
    m.lo = std::min(m.lo, p.m.lo);
    m.pos = m.pos && p.m.pos;
    m.ea = std::max(m.ea, p.m.ea);
    m.er = std::max(m.er, p.m.er);
    m.exact = m.exact && p.m.exact;
    ts.push_back(p.t);
  }
  const auto rank = static_cast<int>(s.size());
  const Tensor r = kiln::concat(ts, static_cast<int>(axis) - (b.chance(0.3) ? rank : 0));
  b.result(r, m, {});
  for (const Val& p : parts) {
    b.parents(r.id()).push_back(p.t.id());
    for (auto& v : b.pool()) {
      if (v.t.id() == p.t.id()) ++v.uses;
    }
  }
  return true;
}

// gather / embedding with in-range indices: exact integers whose magnitude
// stays below the smallest size the table's axis can take (negative ones
// count from the end), from the pool, an iota, or a new input (values 1 to
// 9) less 5.
bool gather_op(Builder& b) {
  Val* tp = b.pick([](const Val& v) { return v.t.rank() >= 1; });
  if (tp == nullptr) return false;
  const Val table = *tp;
  const Shape ts = table.t.shape();
  // Any axis, or the one that takes the most indices.
  auto axis = static_cast<size_t>(b.uniform(0, static_cast<int64_t>(ts.size()) - 1));
  if (b.chance(0.5)) {
    for (size_t a = 0; a < ts.size(); ++a) {
      if (b.min_of(ts[a]) > b.min_of(ts[axis])) axis = a;
    }
  }
  const int64_t vmin = b.min_of(ts[axis]);
  const double bound = static_cast<double>(vmin - 1);
  std::optional<Val> idx;
  Val* ip = b.pick([&](const Val& v) {
    return is_int(v.t.dtype()) && v.m.exact && v.m.hi <= bound && v.t.rank() <= 2;
  });
  const DType it = b.chance(0.5) ? DType::i32 : DType::i64;
  if (ip != nullptr && b.chance(0.7)) {
    idx = *ip;
  } else if (vmin >= 5 && b.inputs() < Builder::kMaxInputs && b.chance(0.7)) {
    Shape s = b.derived_shape();
    if (s.size() > 2) s.erase(s.begin(), s.end() - 2);
    Val& in = b.new_input(it, s);
    const Val inv = in;
    Meta m;
    m.hi = 4;
    m.lo = 0;
    idx = b.result(inv.t - 5.0, m, {&inv});
  } else if (b.chance(0.5)) {
    // One index (a rank-0 tensor), from the end or not.
    const int64_t k = b.uniform(-vmin, vmin - 1);
    Meta m;
    m.hi = m.lo = static_cast<double>(std::llabs(k));
    idx = Val{kiln::constant(static_cast<double>(k), it), m, 0};
  } else {
    // 0, 1, ... up to vmin - 1.
    const int64_t k = b.uniform(1, std::min<int64_t>(vmin, 8));
    Meta m;
    m.hi = static_cast<double>(k - 1);
    idx = b.result(kiln::iota({k}, 0, it), m, {});
  }
  Shape out(ts.begin(), ts.begin() + static_cast<std::ptrdiff_t>(axis));
  const Shape is = idx->t.shape();
  out.insert(out.end(), is.begin(), is.end());
  out.insert(out.end(), ts.begin() + static_cast<std::ptrdiff_t>(axis + 1), ts.end());
  if (out.size() > 5 || b.max_numel(out) > b.options().max_numel) return false;
  const auto rank = static_cast<int>(ts.size());
  const Tensor r =
      axis == 0 && b.chance(0.5)
          ? kiln::embedding(table.t, idx->t)
          : kiln::gather(table.t, idx->t, static_cast<int>(axis) - (b.chance(0.3) ? rank : 0));
  b.result(r, table.m, {&table, &*idx});
  return true;
}

// iota over a shape that broadcasts against the full one, in a dtype that
// holds its largest index exactly.
bool iota_op(Builder& b) {
  Shape s = b.derived_shape();
  if (s.empty()) s = b.full_;
  const auto rank = static_cast<int>(s.size());
  const auto axis = static_cast<int>(b.uniform(0, rank - 1));
  static const std::vector<DType> kTypes = {DType::i64, DType::i32, DType::f32,
                                            DType::f64, DType::f16, DType::bf16};
  const DType t = b.focus_dtype() != DType::boolean && b.chance(b.focused_draw() ? 0.95 : 0.5)
                      ? b.focus_dtype()
                      : b.choose(kTypes);
  Meta m;
  m.hi = static_cast<double>(b.max_of(s[static_cast<size_t>(axis)]) - 1);
  m.lo = 0;
  if (!b.fits(m, t)) return false;
  std::vector<kiln::DimArg> dims = dim_args(s);
  const Tensor r = kiln::iota(dims, axis - (b.chance(0.3) ? rank : 0), t);
  b.result(r, m, {});
  return true;
}

const std::vector<Entry>& op_table() {
  using kiln::ir::Op;
  static const std::vector<Entry> kTable = {
      // Exact unary ops, on any numeric operand.
      {"neg", 3,
       [](Builder& b) {
         Val* x = b.pick(is_numeric);
         if (x == nullptr) return false;
         const Val v = *x;
         Meta m = v.m;
         m.pos = false;
         if (!b.fits(m, v.t.dtype())) return false;
         b.result(b.chance(0.5) ? -v.t : kiln::neg(v.t), m, {&v});
         return true;
       }},
      {"abs", 3,
       [](Builder& b) {
         Val* x = b.pick(is_numeric);
         if (x == nullptr) return false;
         const Val v = *x;
         Meta m = v.m;
         m.pos = m.lo > 0;
         b.result(kiln::abs(v.t), m, {&v});
         return true;
       }},
      {"relu", 3,
       [](Builder& b) {
         Val* x = b.pick(is_numeric);
         if (x == nullptr) return false;
         const Val v = *x;
         Meta m = v.m;
         m.lo = m.pos ? m.lo : 0;
         b.result(kiln::relu(v.t), m, {&v});
         return true;
       }},
      {"square", 3,
       [](Builder& b) {
         Val* x = b.pick(is_numeric);
         if (x == nullptr) return false;
         const Val v = *x;
         const DType t = v.t.dtype();
         Meta m;
         m.hi = v.m.hi * v.m.hi;
         m.lo = v.m.lo * v.m.lo;
         m.pos = m.lo > 0;
         // (x + d)^2 - x^2 = 2 x d + d^2, |d| <= ea + er |x|.
         m.er = 2 * v.m.er + v.m.er * v.m.er;
         m.ea = 2 * v.m.hi * v.m.ea * (1 + v.m.er) + v.m.ea * v.m.ea;
         m.exact = v.m.exact && t != DType::f32 && t != DType::f64;
         if (!b.rounded_fits(m, t, 1)) return false;
         b.result(kiln::square(v.t), m, {&v});
         return true;
       }},
      {"logical_not", 2,
       [](Builder& b) {
         Val* x = b.pick([](const Val& v) { return v.t.dtype() == DType::boolean; });
         if (x == nullptr) return false;
         const Val v = *x;
         b.result(kiln::logical_not(v.t), v.m, {&v});
         return true;
       }},
      // Float math, on f32, f64, f16 and bf16 (computed in f32, rounded once).
      {"exp", 3,
       [](Builder& b) {
         return b.unary_float([](Tensor x) { return kiln::exp(x); },
                              [&b](const Val& v) { return b.tamed(v, 3); },
                              [&b](const Meta& x, DType, Meta& m, double& interp) {
                                m.hi = std::exp(x.hi);
                                m.lo = std::exp(-x.hi);
                                m.pos = true;
                                m.er = std::expm1(abs_err(x));  // exp(x + d) = exp(x) e^d
                                interp = Builder::kInterpLibm;
                                return b.libm_units();
                              });
       }},
      {"log", 3,
       [](Builder& b) {
         return b.unary_float([](Tensor x) { return kiln::log(x); },
                              [&b](const Val& v) { return b.positive(v, 0.25); },
                              [&b](const Meta& x, DType, Meta& m, double& interp) {
                                m.hi =
                                    std::max(std::fabs(std::log(x.lo)), std::fabs(std::log(x.hi)));
                                // log(x + d) - log(x) = log1p(d / x), |d / x| <= rel_err.
                                m.ea = -std::log1p(-rel_err(x));
                                interp = Builder::kInterpLibm;
                                return b.libm_units();
                              });
       }},
      {"sqrt", 2,
       [](Builder& b) {
         return b.unary_float([](Tensor x) { return kiln::sqrt(x); },
                              [&b](const Val& v) { return b.positive(v, 0.25); },
                              [&b](const Meta& x, DType, Meta& m, double&) {
                                m.hi = std::sqrt(x.hi);
                                m.lo = std::sqrt(x.lo);
                                m.pos = true;
                                m.er = 1 - std::sqrt(1 - rel_err(x));
                                // Correctly rounded on the CPU (f32 and the 16-bit types,
                                // whose f32 result rounds again without a double-rounding
                                // error).
                                m.exact = x.exact && !b.options().device_math;
                                return 1.0;
                              });
       }},
      {"rsqrt", 2,
       [](Builder& b) {
         return b.unary_float([](Tensor x) { return kiln::rsqrt(x); },
                              [&b](const Val& v) { return b.positive(v, 0.25); },
                              [&b](const Meta& x, DType t, Meta& m, double& interp) {
                                m.hi = 1 / std::sqrt(x.lo);
                                m.lo = 1 / std::sqrt(x.hi);
                                m.pos = true;
                                m.er = 1 / std::sqrt(1 - rel_err(x)) - 1;
                                interp = 2;  // 1 / sqrt(x) in double
                                return b.rsqrt_units(t);
                              });
       }},
      {"sin", 2,
       [](Builder& b) {
         return b.unary_float([](Tensor x) { return kiln::sin(x); },
                              [&b](const Val& v) { return b.tamed(v, 8); },
                              [&b](const Meta& x, DType, Meta& m, double& interp) {
                                m.hi = std::min(1.0, x.hi);
                                m.ea = abs_err(x);  // |sin'| <= 1
                                interp = Builder::kInterpLibm;
                                return b.libm_units();
                              });
       }},
      {"cos", 2,
       [](Builder& b) {
         return b.unary_float([](Tensor x) { return kiln::cos(x); },
                              [&b](const Val& v) { return b.tamed(v, 8); },
                              [&b](const Meta& x, DType, Meta& m, double& interp) {
                                m.hi = 1;
                                m.ea = abs_err(x);
                                interp = Builder::kInterpLibm;
                                return b.libm_units();
                              });
       }},
      {"tanh", 2,
       [](Builder& b) {
         return b.unary_float([](Tensor x) { return kiln::tanh(x); },
                              [](const Val& v) { return v; },
                              [&b](const Meta& x, DType, Meta& m, double& interp) {
                                m.hi = std::min(1.0, x.hi);
                                m.ea = abs_err(x);
                                interp = Builder::kInterpLibm;
                                return b.tanh_units();
                              });
       }},
      {"sigmoid", 2,
       [](Builder& b) {
         return b.unary_float([](Tensor x) { return kiln::sigmoid(x); },
                              [](const Val& v) { return v; },
                              [&b](const Meta& x, DType, Meta& m, double& interp) {
                                m.hi = 1;
                                m.lo = 1 / (1 + std::exp(x.hi));
                                m.pos = true;
                                // s' = s (1 - s): relative |ds / s| <= (1 - s) |dx|.
                                m.er = std::expm1((1 - m.lo) * abs_err(x));
                                interp = Builder::kInterpLibm + 2;  // 1 / (1 + exp(-x))
                                return b.sigmoid_units();
                              });
       }},
      {"gelu", 2,
       [](Builder& b) {
         return b.unary_float([](Tensor x) { return kiln::gelu(x); },
                              [](const Val& v) { return v; },
                              [&b](const Meta& x, DType t, Meta& m, double& interp) {
                                m.hi = x.hi;
                                m.ea = 1.13 * abs_err(x);  // |gelu'| <= 1.129
                                m.ea += b.gelu_abs(t, x.hi);
                                m.er = b.gelu_rel(t);
                                m.f32_gelu = t == DType::f32;
                                interp = Builder::kInterpLibm + 4;
                                return b.gelu_units(t);
                              });
       }},
      // Binary.
      {"add", 5, [](Builder& b) { return arithmetic(b, Op::add); }},
      {"sub", 4, [](Builder& b) { return arithmetic(b, Op::sub); }},
      {"mul", 5, [](Builder& b) { return arithmetic(b, Op::mul); }},
      {"div", 3, [](Builder& b) { return arithmetic(b, Op::div); }},
      {"maximum", 2, [](Builder& b) { return arithmetic(b, Op::maximum); }},
      {"minimum", 2, [](Builder& b) { return arithmetic(b, Op::minimum); }},
      {"pow", 2, [](Builder& b) { return arithmetic(b, Op::pow); }},
      {"eq", 1, [](Builder& b) { return comparison(b, Op::eq); }},
      {"ne", 1, [](Builder& b) { return comparison(b, Op::ne); }},
      {"lt", 1, [](Builder& b) { return comparison(b, Op::lt); }},
      {"le", 1, [](Builder& b) { return comparison(b, Op::le); }},
      {"gt", 1, [](Builder& b) { return comparison(b, Op::gt); }},
      {"ge", 1, [](Builder& b) { return comparison(b, Op::ge); }},
      {"where", 3, where_op},
      {"cast", 4, cast_op},
      // Reductions, over any axis or two.
      {"sum", 2, [](Builder& b) { return reduction(b, Op::reduce_sum); }},
      {"mean", 2, [](Builder& b) { return reduction(b, Op::reduce_mean); }},
      {"max", 2, [](Builder& b) { return reduction(b, Op::reduce_max); }},
      {"min", 2, [](Builder& b) { return reduction(b, Op::reduce_min); }},
      {"prod", 1, [](Builder& b) { return reduction(b, Op::reduce_prod); }},
      {"argmax", 1, argmax_op},
      {"matmul", 2, matmul_op},
      // Shape ops.
      {"reshape", 2, reshape_op},
      {"expand", 2, expand_op},
      {"permute", 2, permute_op},
      {"slice", 2, slice_op},
      {"concat", 2, concat_op},
      {"gather", 2, gather_op},
      {"iota", 1, iota_op},
      // Composites.
      {"softmax", 2, softmax_op},
      {"log_softmax", 1, log_softmax_op},
      {"layernorm", 1, layernorm_op},
      {"rmsnorm", 1, rmsnorm_op},
  };
  return kTable;
}

struct Context {
  uint64_t seed;
  RandomGraphOptions options;
  std::vector<ErrorBound>* bounds;  // out: one per output
};

ErrorBound bound_of(const Meta& m) { return ErrorBound{m.ea, m.er, m.exact}; }
thread_local const Context* g_context = nullptr;

kiln::Outputs build_graph() {
  const Context& ctx = *g_context;
  Builder b(ctx.seed, ctx.options);
  std::vector<kiln::SymDim> handles;
  g_sym_handles = &handles;
  struct Reset {
    ~Reset() { g_sym_handles = nullptr; }
  } reset;

  b.make_full_shape();  // declares the symbols

  // The seed's focus, so that any 35 consecutive seeds (CI runs 1 to 40)
  // use every (op, dtype) pair the graph API accepts, in graphs that stay
  // random: a dtype, seed mod 7, which new values and operands prefer (a
  // graph mostly of one dtype, as a model is), and a fifth of the op table,
  // the entries whose index is (seed / 7) mod 5, each tried (up to
  // kFocusTries times, at random points among the random draws) on values
  // of that dtype, if need be a new input. Their results are kept live:
  // the outputs cover them.
  constexpr int kFocusTries = 6;
  b.set_focus(static_cast<DType>(ctx.seed % kiln::kDTypeCount));
  const auto& table = op_table();
  int total_weight = 0;
  for (const auto& e : table) total_weight += e.weight;
  std::vector<std::pair<size_t, int>> scheduled;  // entry, tries left
  for (size_t i = 0; i < table.size(); ++i) {
    if (i % 5 == (ctx.seed / kiln::kDTypeCount) % 5) scheduled.emplace_back(i, kFocusTries);
  }
  std::shuffle(scheduled.begin(), scheduled.end(), b.rng());
  std::vector<int32_t> wanted;  // the focus entries' results

  // The first input has the full shape, so every symbol is bound by an input.
  b.new_input(b.random_dtype(), b.full_);
  const int more = static_cast<int>(b.uniform(0, 2));
  for (int i = 0; i < more; ++i) b.new_input(b.random_dtype(), b.derived_shape());
  // A float input, so the float ops have something to start from.
  if (std::none_of(b.pool().begin(), b.pool().end(),
                   [](const Val& v) { return is_float(v.t.dtype()); })) {
    b.new_input(DType::f32, b.derived_shape());
  }

  // Ops as the graph API counts them (a composite is one); an entry adds at
  // most kMaxOpsPerEntry (its guards included), so the total stays within
  // max_ops. The focus entries come on top of the target.
  constexpr int kMaxOpsPerEntry = 4;
  // Mostly small graphs (the focus entries come on top: CI compiles every
  // kernel), one in seven up to max_ops.
  const int target = static_cast<int>(
      b.uniform(1, b.chance(0.15) ? ctx.options.max_ops : std::max(1, ctx.options.max_ops / 5)));
  for (int attempt = 0; (b.ops() < target || !scheduled.empty()) &&
                        b.ops() <= ctx.options.max_ops - kMaxOpsPerEntry && attempt < 40 * target;
       ++attempt) {
    // A focus entry where one is due: at random, or whenever the target
    // (or the budget) leaves no room for the rest.
    const int room = std::min(target, ctx.options.max_ops - kMaxOpsPerEntry) - b.ops();
    const bool focused =
        !scheduled.empty() && (room <= 3 * static_cast<int>(scheduled.size()) || b.chance(0.3));
    const Entry* e = table.data();
    if (focused) {
      e = &table[scheduled.front().first];
    } else {
      int64_t r = b.uniform(0, total_weight - 1);
      for (const auto& candidate : table) {
        if (r < candidate.weight) {
          e = &candidate;
          break;
        }
        r -= candidate.weight;
      }
    }
    if (b.inputs() < Builder::kMaxInputs && b.chance(0.05)) {
      b.new_input(b.random_dtype(), b.derived_shape());
    }
    // A focus entry's operand: a value of the focus dtype, a new input if
    // there is none, or where an earlier try failed (an exact operand
    // leaves the most room in the dtype's tolerance).
    if (focused && (std::none_of(b.pool().begin(), b.pool().end(),
                                 [&](const Val& v) { return v.t.dtype() == b.focus_dtype(); })
                        ? b.inputs() < Builder::kMaxInputs - 1
                        : scheduled.front().second < kFocusTries &&
                              b.inputs() < Builder::kMaxInputs - 3 && b.chance(0.6))) {
      // After a failed try, sometimes a shape of its own (the seed's shapes
      // may lack what the entry needs: rank 2, a short or constant dim).
      const bool own = scheduled.front().second < kFocusTries && b.chance(0.5);
      b.new_input(b.focus_dtype(), own             ? b.free_shape()
                                   : b.chance(0.5) ? b.full_
                                                   : b.derived_shape());
    }
    b.set_focused_draw(focused);
    const bool added = e->build(b);
    b.set_focused_draw(false);
    if (!focused) continue;
    // Done when the op took an operand of the focus dtype (where: its
    // values; without operands: its result), as the coverage test counts.
    bool done = added;
    if (added) {
      const Val& r = b.pool().back();
      const std::vector<int32_t>& parents = b.parents(r.t.id());
      const size_t k = std::string(e->name) == "where" ? 1 : 0;
      const DType key = parents.size() > k ? b.dtype_of(parents[k]) : r.t.dtype();
      done = key == b.focus_dtype();
    }
    auto cell = scheduled.front();
    scheduled.erase(scheduled.begin());
    if (done) wanted.push_back(b.pool().back().t.id());
    // An entry that took another dtype twice has no use for this one (the
    // graph API's rules, or the pool's): given up on.
    if (added && !done) cell.second = std::min(cell.second, 2);
    if (!done && --cell.second > 0) scheduled.push_back(cell);
  }

  // Outputs: the last value, the values nothing reads that cover the focus
  // entries' results, and a few more that nothing reads (an input among
  // them is a copy): at most nine besides the last.
  constexpr size_t kMaxExtraOutputs = 9;
  std::vector<Tensor> outs;
  std::vector<ErrorBound>& bounds = *ctx.bounds;
  auto& pool = b.pool();
  outs.push_back(pool.back().t);
  bounds.push_back(bound_of(pool.back().m));
  std::vector<size_t> sinks;
  std::vector<size_t> input_sinks;
  for (size_t i = 0; i + 1 < pool.size(); ++i) {
    if (pool[i].uses != 0) continue;
    (b.is_input(pool[i].t) ? input_sinks : sinks).push_back(i);
  }
  // The latest first: they sit deepest in the graph; inputs last.
  std::reverse(sinks.begin(), sinks.end());
  sinks.insert(sinks.end(), input_sinks.begin(), input_sinks.end());
  auto cone = [&](int32_t id) {
    std::set<int32_t> seen;
    std::vector<int32_t> stack = {id};
    while (!stack.empty()) {
      const int32_t v = stack.back();
      stack.pop_back();
      if (!seen.insert(v).second) continue;
      for (int32_t p : b.parents(v)) stack.push_back(p);
    }
    return seen;
  };
  std::set<int32_t> uncovered(wanted.begin(), wanted.end());
  for (int32_t id : cone(pool.back().t.id())) uncovered.erase(id);
  std::vector<bool> taken(sinks.size(), false);
  size_t extra = 0;
  while (!uncovered.empty() && extra < kMaxExtraOutputs) {
    size_t best = sinks.size();
    size_t best_count = 0;
    for (size_t k = 0; k < sinks.size(); ++k) {
      if (taken[k]) continue;
      size_t count = 0;
      for (int32_t id : cone(pool[sinks[k]].t.id())) count += uncovered.count(id);
      if (count > best_count) {
        best = k;
        best_count = count;
      }
    }
    if (best == sinks.size()) break;
    taken[best] = true;
    ++extra;
    for (int32_t id : cone(pool[sinks[best]].t.id())) uncovered.erase(id);
    outs.push_back(pool[sinks[best]].t);
    bounds.push_back(bound_of(pool[sinks[best]].m));
  }
  const auto more_outputs = static_cast<size_t>(b.uniform(0, 1));
  for (size_t k = 0, added = 0;
       k < sinks.size() && added < more_outputs && extra < kMaxExtraOutputs; ++k) {
    if (taken[k]) continue;
    taken[k] = true;
    ++added;
    ++extra;
    outs.push_back(pool[sinks[k]].t);
    bounds.push_back(bound_of(pool[sinks[k]].m));
  }
  // Rarely the same value twice (two buffers for one node), or a constant.
  if (b.chance(0.05)) {
    outs.push_back(outs.front());
    bounds.push_back(bounds.front());
  }
  if (b.chance(0.03)) {
    const Val c = b.constant(b.random_dtype());
    outs.push_back(c.t);
    bounds.push_back(bound_of(c.m));
  }
  return kiln::Outputs(outs);
}

}  // namespace

std::string random_graph_name(uint64_t seed) { return "rg_" + std::to_string(seed); }

RandomGraph random_graph(uint64_t seed, const RandomGraphOptions& options) {
  RandomGraph rg;
  const Context ctx{seed, options, &rg.bounds};
  g_context = &ctx;
  struct Reset {
    ~Reset() { g_context = nullptr; }
  } reset;
  rg.graph = kiln::trace(random_graph_name(seed), &build_graph);
  if (rg.graph.outputs.size() != rg.bounds.size()) {
    throw std::logic_error("random_graph: " + std::to_string(rg.bounds.size()) + " bounds for " +
                           std::to_string(rg.graph.outputs.size()) + " outputs");
  }
  return rg;
}

std::vector<kiln::ir::SymbolValues> random_sizes(const kiln::ir::Graph& g, uint64_t seed,
                                                 int count) {
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  std::vector<kiln::ir::SymbolValues> out;
  for (int i = 0; i < count; ++i) {
    kiln::ir::SymbolValues v;
    for (const auto& s : g.symbols) {
      const int64_t steps = (s.max - s.min) / s.divisible_by;
      int64_t x = s.min + std::uniform_int_distribution<int64_t>(0, steps)(rng) * s.divisible_by;
      const int pick = std::uniform_int_distribution<int>(0, 9)(rng);
      if (pick == 0) x = s.min;
      if (pick == 1) x = s.min + steps * s.divisible_by;
      if (pick == 2 && !s.hot.empty()) x = s.hot.front();
      v.push_back(x);
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::string sizes_to_string(const kiln::ir::Graph& g, const kiln::ir::SymbolValues& values) {
  std::string s;
  for (size_t i = 0; i < g.symbols.size() && i < values.size(); ++i) {
    if (!s.empty()) s += " ";
    s += g.symbols[i].name + "=" + std::to_string(values[i]);
  }
  return s;
}

std::vector<std::string> random_graph_entries() {
  std::vector<std::string> names;
  for (const auto& e : op_table()) names.emplace_back(e.name);
  return names;
}

namespace {

std::string index_string(const std::vector<int64_t>& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] == 0 ? 0 : flat % shape[d];
    flat = shape[d] == 0 ? 0 : flat / shape[d];
  }
  std::string s = "[";
  for (size_t d = 0; d < idx.size(); ++d) s += (d ? ", " : "") + std::to_string(idx[d]);
  return s + "]";
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t d = 0; d < shape.size(); ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
  return s + "]";
}

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// A value of dtype t with the digits that tell it from its neighbours (an
// f64's last bits too).
std::string value(double v, kiln::DType t) {
  if (t != kiln::DType::f64) return number(v);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

double allowed_error(const ErrorBound& bound, kiln::DType t, double want) {
  if (bound.exact || !is_float(t)) return 0;
  const double floor = 2 * unit_roundoff(t) * std::fabs(want) + tiny(t);
  return std::max(bound.abs + bound.rel * std::fabs(want), floor);
}

std::string compare_outputs(const kiln::ir::Graph& g, const std::vector<ErrorBound>& bounds,
                            const std::vector<kiln::compiler::HostTensor>& got,
                            const std::vector<kiln::compiler::HostTensor>& want,
                            std::vector<double>* ratios) {
  std::string out;
  if (ratios != nullptr) ratios->assign(want.size(), 0);
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string name = i < g.output_names.size() ? g.output_names[i] : std::to_string(i);
    const auto& w = want[i];
    if (i >= got.size() || got[i].shape != w.shape || got[i].values.size() != w.values.size()) {
      out += "output " + name + ": shape or size differs\n";
      if (ratios != nullptr) (*ratios)[i] = INFINITY;
      continue;
    }
    if (i >= bounds.size()) {
      out += "output " + name + ": no error bound for it\n";
      if (ratios != nullptr) (*ratios)[i] = INFINITY;
      continue;
    }
    const ErrorBound& eb = bounds[i];
    double worst = 0;
    int64_t worst_at = -1;
    int64_t bad = 0;
    for (size_t k = 0; k < w.values.size(); ++k) {
      const double a = got[i].values[k];
      const double b = w.values[k];
      if (std::isnan(a) && std::isnan(b)) continue;
      if (std::isinf(b) && a == b) continue;
      const double bound = allowed_error(eb, w.dtype, b);
      const double e = std::fabs(a - b);
      double ratio = bound > 0 ? e / bound : (e == 0 ? 0 : INFINITY);
      if (std::isnan(ratio)) ratio = INFINITY;
      if (ratio > 1) ++bad;
      if (ratio > worst || worst_at < 0) {
        worst = ratio;
        worst_at = static_cast<int64_t>(k);
      }
    }
    if (ratios != nullptr) (*ratios)[i] = worst;
    if (bad == 0) continue;
    const auto k = static_cast<size_t>(worst_at);
    const double b = w.values[k];
    std::string bound_text;
    if (eb.exact || !is_float(w.dtype)) {
      bound_text = "vs 0 (exact)";
    } else {
      bound_text = "vs bound " + number(allowed_error(eb, w.dtype, b)) + " (abs " + number(eb.abs) +
                   " + rel " + number(eb.rel) + " * |want|, floor " +
                   number(2 * unit_roundoff(w.dtype) * std::fabs(b) + tiny(w.dtype)) + ")";
    }
    out.append("output ").append(name).append(" (").append(kiln::dtype_name(w.dtype));
    out.append(", shape ").append(shape_string(w.shape)).append("): ");
    out.append(std::to_string(bad)).append(" of ").append(std::to_string(w.values.size()));
    out.append(" elements out of bounds; worst at ").append(index_string(w.shape, worst_at));
    out.append(": got ").append(value(got[i].values[k], w.dtype));
    out.append(", want ").append(value(b, w.dtype));
    out.append(", |diff| ").append(number(std::fabs(got[i].values[k] - b)));
    out.append(" ").append(bound_text).append("\n");
  }
  return out;
}

std::string failure_report(uint64_t seed, const std::string& target, const kiln::ir::Graph& g,
                           const kiln::ir::SymbolValues& sizes, const std::string& mismatch) {
  return "random graph seed " + std::to_string(seed) + " on " + target + ", sizes {" +
         sizes_to_string(g, sizes) + "} (rerun alone: KILN_DIFF_SEEDS=" + std::to_string(seed) +
         ":1)\n" + mismatch + kiln::ir::graph_to_string(g);
}

std::vector<uint64_t> seeds_from_env(uint64_t default_start, uint64_t default_count) {
  uint64_t start = default_start;
  uint64_t count = default_count;
  if (const char* env = std::getenv("KILN_DIFF_SEEDS"); env != nullptr && *env != '\0') {
    const std::string s = env;
    const size_t colon = s.find(':');
    try {
      size_t used = 0;
      start = std::stoull(s.substr(0, colon), &used);
      if (used != (colon == std::string::npos ? s.size() : colon)) throw std::invalid_argument(s);
      count = 1;
      if (colon != std::string::npos) {
        count = std::stoull(s.substr(colon + 1), &used);
        if (used != s.size() - colon - 1) throw std::invalid_argument(s);
      }
    } catch (const std::exception&) {
      throw std::invalid_argument("KILN_DIFF_SEEDS='" + s +
                                  "': expected START:COUNT or SEED (decimal)");
    }
  }
  std::vector<uint64_t> seeds;
  for (uint64_t i = 0; i < count; ++i) seeds.push_back(start + i);
  return seeds;
}

}  // namespace kiln_test
