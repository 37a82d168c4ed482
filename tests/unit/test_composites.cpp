// Composites against independent formulas. softmax, log_softmax, layernorm
// and rmsnorm are expanded once, in graph_api.cpp, and that expansion feeds
// both the interpreter and the codegen: comparing the two cannot catch a
// wrong expansion. Here each composite (and gelu, and cross-entropy as users
// write it) is checked against a closed form in float64 written from the
// definition, on random rows and on edge rows (large magnitudes, equal
// values, a large common offset, a variance below eps), at widths 1, 7, 33
// and 1023: the interpreter's result, and the compiled CPU kernels' run
// through the runtime. Each output element must be within a bound that
// follows from the formula in the compute dtype's unit roundoff
// (docs/testing.md, "Composites against formulas").
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/generator.h"
#include "kiln/compiler/interpreter.h"
#include "kiln/graph.h"
#include "kiln/runtime.h"
#include "kiln/runtime_internal/cpu_features.h"
#include "test_support/random_call.h"
#include "test_support/unit_roundoff.h"

namespace {

namespace fs = std::filesystem;
using kiln::DType;
using kiln::compiler::HostTensor;
using kiln_test::is_16bit;
using kiln_test::unit_roundoff;

// The defaults kiln/graph.h declares; the references use them as written
// there, so a changed default fails here rather than passing silently.
constexpr double kLayernormEps = 1e-5;
constexpr double kRmsnormEps = 1e-6;

// The widths every row-wise composite runs at: 1 (a row that is its own
// max and mean), odd widths, and 1023, which spans four of the CPU
// kernels' 256-element summation blocks.
const std::vector<int64_t> kWidths = {1, 7, 33, 1023};

// ---------------------------------------------------------------------------
// References, written from the definitions. They compute in long double
// (x86-64's 64-bit significand, 2^11 times finer than double): a double
// reference would be as inexact as the f64 composites it checks.
using Real = long double;

// Neumaier's compensated sum: the rows' sums are exact to a few ulps
// whatever their order and cancellation.
class Sum {
 public:
  void add(Real v) {
    const Real t = s_ + v;
    c_ += std::abs(s_) >= std::abs(v) ? (s_ - t) + v : (v - t) + s_;
    s_ = t;
  }
  Real value() const { return s_ + c_; }

 private:
  Real s_ = 0, c_ = 0;
};

// One row's softmax: S = sum_j exp(x_j - max) = 1 + rest, where rest sums
// every term but the first maximum's, so log S = log1p(rest) keeps a tiny
// rest (a dominant logit). shift is the mean of |x_j - max| weighted by the
// terms: how far the roundings of the exps' arguments move S.
struct SoftmaxRow {
  Real max = 0, rest = 0, log_s = 0, shift = 0;

  explicit SoftmaxRow(std::span<const double> x) {
    const auto top = std::max_element(x.begin(), x.end());
    max = *top;
    Sum r, s;
    for (auto it = x.begin(); it != x.end(); ++it) {
      if (it == top) continue;
      const Real t = std::exp(*it - max);
      r.add(t);
      s.add(t * (max - *it));
    }
    rest = r.value();
    log_s = std::log1p(rest);
    shift = s.value() / (1 + rest);
  }
  Real p(Real x) const { return std::exp(x - max) / (1 + rest); }
  Real log_p(Real x) const { return (x - max) - log_s; }
};

// One row's layernorm statistics: two-pass mean and biased variance (the
// second pass corrected by the first's residual, Chan, Golub and LeVeque).
struct MomentsRow {
  Real mean = 0, var = 0, mean_abs = 0;

  explicit MomentsRow(std::span<const double> x) {
    const auto n = static_cast<Real>(x.size());
    Sum s, a;
    for (double v : x) {
      s.add(v);
      a.add(std::abs(v));
    }
    mean = s.value() / n;
    mean_abs = a.value() / n;
    Sum sq, d;
    for (double v : x) {
      sq.add((v - mean) * (v - mean));
      d.add(v - mean);
    }
    var = std::max(Real{0}, (sq.value() - d.value() * d.value() / n) / n);
  }
};

Real mean_square(std::span<const double> x) {
  Sum s;
  for (Real v : x) s.add(v * v);
  return s.value() / static_cast<Real>(x.size());
}

// 0.5 x (1 + erf(x / sqrt 2)); for x < 0 through erfc, which does not cancel
// where erf is near -1.
Real gelu_reference(Real x) {
  const Real r = 1 / std::sqrt(Real{2});
  return x >= 0 ? x / 2 * (1 + std::erf(x * r)) : x / 2 * std::erfc(-x * r);
}

// ---------------------------------------------------------------------------
// Bounds: the largest error a correct evaluation of the formula may have, in
// units of the compute dtype's unit roundoff u (2^-24 for f32, f16 and bf16,
// which compute in f32; 2^-53 for f64), times the quantity whose rounding
// contributes it.

double compute_roundoff(DType t) { return unit_roundoff(t == DType::f64 ? t : DType::f32); }

// Library exp and log: within 4 ulps (glibc's vector expf/logf; scalar
// libm is within 1).
constexpr double kExpUnits = 8;
constexpr double kLogUnits = 8;
// rsqrt as 1 / sqrt: two correct roundings, plus the argument's error
// halved (counted by the caller).
constexpr double kRsqrtUnits = 2;

// A sum of n terms: at most n - 1 roundings reach any term, in whatever
// order the adds run (the CPU kernels' blocks of 256 and vector lanes, the
// interpreter's sequential f64 sums), so its error is within (n - 1) u
// times the sum of |terms|. A random walk's 2 sqrt(n) is no bound here: a
// row of equal values rounds alike at every add (the f64 interpreter's
// layernorm of such a row, at width 1023, was 2.6 times that).
double sum_units(int64_t n) { return static_cast<double>(n - 1); }

// An output's absolute floor: results below the smallest normal may be
// flushed or lose relative accuracy (f32's and bf16's FLT_MIN, f64's
// DBL_MIN); f16 keeps subnormals (bit-exact conversions), down to one step.
double floor_for(DType t) {
  switch (t) {
    case DType::f64:
      return DBL_MIN;
    case DType::f16:
      return 0x1p-24;
    default:
      return FLT_MIN;
  }
}

// A 16-bit result is the f32 value rounded once more, to nearest: half an
// ulp, at most u |value| (2^-11 for f16, 2^-8 for bf16), beyond the f32
// value's own error, which the other terms bound (so where that value is
// near a midpoint, the far neighbour is still within the sum).
double io_rounding(DType t, double value) {
  return is_16bit(t) ? unit_roundoff(t) * std::abs(value) : 0;
}

// ---------------------------------------------------------------------------
// Cases: inputs, the reference of each output and its bound.

struct Expected {
  std::string label;  // "softmax f32": the composite and dtype, for the summary
  std::vector<double> want = {}, bound = {};
  std::vector<std::string> where = {};  // per element: the row's kind and position
  void add(Real w, double b, std::string at) {
    want.push_back(static_cast<double>(w));
    bound.push_back(b);
    where.push_back(std::move(at));
  }
};

// What a row holds; each composite runs every kind it lists at every width.
enum class Kind {
  random,        // uniform in [-4, 4]
  near_80,       // +-80 plus noise: exp(80) is near f32's top
  overflow,      // [80, 95]: exp overflows f32 unless the max is subtracted
  underflow,     // [-110, -95]: every exp underflows f32 unless it is
  huge,          // +-1e4 plus noise: overflows f64 too
  equal,         // one value repeated (full significand): uniform softmax, zero variance
  dominant,      // one logit 40 above the rest: log S = log1p(tiny)
  offset,        // 1e4 + [-1, 1]: the mean is 1e4 times the spread
  small_spread,  // 0.5 + [-1e-3, 1e-3]: the variance is below layernorm's eps
  tiny           // [-1e-3, 1e-3]: the mean square is below rmsnorm's eps
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::random:
      return "random";
    case Kind::near_80:
      return "near_80";
    case Kind::overflow:
      return "overflow";
    case Kind::underflow:
      return "underflow";
    case Kind::huge:
      return "huge";
    case Kind::equal:
      return "equal";
    case Kind::dominant:
      return "dominant";
    case Kind::offset:
      return "offset";
    case Kind::small_spread:
      return "small_spread";
    case Kind::tiny:
      return "tiny";
  }
  return "?";
}

std::vector<double> make_row(Kind k, int64_t c, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(-1, 1);
  auto sign = [&] { return unit(rng) < 0 ? -1.0 : 1.0; };
  std::vector<double> row(static_cast<size_t>(c));
  const double repeated = 4 * unit(rng);
  for (double& v : row) {
    switch (k) {
      case Kind::random:
      case Kind::dominant:
        v = 4 * unit(rng);
        break;
      case Kind::near_80:
        v = sign() * (80 + unit(rng));
        break;
      case Kind::overflow:
        v = 87.5 + 7.5 * unit(rng);
        break;
      case Kind::underflow:
        v = -102.5 + 7.5 * unit(rng);
        break;
      case Kind::huge:
        v = sign() * (1e4 + 2 * unit(rng));
        break;
      case Kind::equal:
        v = repeated;
        break;
      case Kind::offset:
        v = 1e4 + unit(rng);
        break;
      case Kind::small_spread:
        v = 0.5 + 1e-3 * unit(rng);
        break;
      case Kind::tiny:
        v = 1e-3 * unit(rng);
        break;
    }
  }
  if (k == Kind::dominant) row[std::uniform_int_distribution<size_t>(0, row.size() - 1)(rng)] = 40;
  return row;
}

const std::vector<Kind> kLogitKinds = {Kind::random, Kind::near_80, Kind::overflow, Kind::underflow,
                                       Kind::huge,   Kind::equal,   Kind::dominant};
const std::vector<Kind> kNormKinds = {Kind::random, Kind::offset, Kind::equal, Kind::small_spread,
                                      Kind::huge};
const std::vector<Kind> kRmsKinds = {Kind::random, Kind::tiny, Kind::huge, Kind::equal};

// Rows of the given kinds (each rounded to `dtype`, the values the kernels
// read), as an [rows, c] tensor.
HostTensor make_rows(DType dtype, const std::vector<Kind>& kinds, int64_t c, std::mt19937_64& rng) {
  HostTensor t{dtype, {static_cast<int64_t>(kinds.size()), c}, {}};
  for (Kind k : kinds) {
    for (double v : make_row(k, c, rng))
      t.values.push_back(kiln::compiler::round_to_dtype(v, dtype));
  }
  return t;
}

HostTensor make_vector(DType dtype, int64_t c, double lo, double hi, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> dist(lo, hi);
  HostTensor t{dtype, {c}, {}};
  for (int64_t i = 0; i < c; ++i) {
    t.values.push_back(kiln::compiler::round_to_dtype(dist(rng), dtype));
  }
  return t;
}

std::span<const double> row_of(const HostTensor& t, int64_t r) {
  const auto c = static_cast<size_t>(t.shape.back());
  return std::span<const double>(t.values).subspan(static_cast<size_t>(r) * c, c);
}

std::string at(Kind k, int64_t c, int64_t j) {
  return std::string(kind_name(k)) + " row, width " + std::to_string(c) + ", column " +
         std::to_string(j);
}

// softmax and log_softmax of each row. In units of u, p_j's relative error
// is |x_j - max| (the argument's rounding, carried through exp) + exp's +
// S's (its terms' arguments, weighted: shift; exp's; the sum's) + the
// division's. log p_j = (x_j - max) - log S adds the argument's and the
// subtraction's roundings, log's and S's relative error, absolutely.
void softmax_expected(const HostTensor& x, const std::vector<Kind>& kinds, Expected& sm,
                      Expected& lsm) {
  const double u = compute_roundoff(x.dtype);
  const int64_t c = x.shape[1];
  for (size_t r = 0; r < kinds.size(); ++r) {
    const auto row = row_of(x, static_cast<int64_t>(r));
    const SoftmaxRow s(row);
    const double s_units = static_cast<double>(s.shift) + kExpUnits + sum_units(c);
    for (int64_t j = 0; j < c; ++j) {
      const double xj = row[static_cast<size_t>(j)];
      const auto d = static_cast<double>(std::abs(xj - s.max));
      const auto p = static_cast<double>(s.p(xj)), lp = static_cast<double>(s.log_p(xj));
      sm.add(p,
             u * p * (d + kExpUnits + s_units + 1) + io_rounding(x.dtype, p) + floor_for(x.dtype),
             at(kinds[r], c, j));
      lsm.add(
          lp,
          u * (2 * d + (kLogUnits + 1) * static_cast<double>(s.log_s) + s_units + std::abs(lp)) +
              io_rounding(x.dtype, lp) + floor_for(x.dtype),
          at(kinds[r], c, j));
    }
  }
}

// layernorm(x, w, b) = (x - mean) / sqrt(var + eps) * w + b, biased
// variance. With z = (x - mean) / sigma, sigma = sqrt(var + eps): the mean's
// rounding (sum_units times mean |x|) moves every z by that over sigma (the
// offset row's condition), d's rounding and the variance's relative error
// (halved through rsqrt) scale z; then z * w + b rounds twice.
void layernorm_expected(const HostTensor& x, const HostTensor& w, const HostTensor& b,
                        const std::vector<Kind>& kinds, Expected& out) {
  const double u = compute_roundoff(x.dtype);
  const int64_t c = x.shape[1];
  const double units = sum_units(c);
  for (size_t r = 0; r < kinds.size(); ++r) {
    const auto row = row_of(x, static_cast<int64_t>(r));
    const MomentsRow m(row);
    const Real sigma = std::sqrt(m.var + kLayernormEps);
    const auto condition = static_cast<double>(m.mean_abs / sigma);
    for (int64_t j = 0; j < c; ++j) {
      const auto k = static_cast<size_t>(j);
      const Real z = (row[k] - m.mean) / sigma;
      const Real y = z * w.values[k] + b.values[k];
      const auto abs_z = static_cast<double>(std::abs(z));
      const auto abs_y = static_cast<double>(std::abs(y));
      const double z_error =
          u * ((units + 1) * condition + abs_z * (1 + (units + 3) / 2 + kRsqrtUnits + 1));
      out.add(y,
              std::abs(w.values[k]) * z_error + u * (abs_z * std::abs(w.values[k]) + abs_y) +
                  io_rounding(x.dtype, abs_y) + floor_for(x.dtype),
              at(kinds[r], c, j));
    }
  }
}

// rmsnorm(x, w) = x / sqrt(mean(x^2) + eps) * w: relative errors only (the
// mean of squares' halved through rsqrt, then two products); a 16-bit
// result rounds twice (x * r cast back, then the product with w).
void rmsnorm_expected(const HostTensor& x, const HostTensor& w, const std::vector<Kind>& kinds,
                      Expected& out) {
  const double u = compute_roundoff(x.dtype);
  const int64_t c = x.shape[1];
  for (size_t r = 0; r < kinds.size(); ++r) {
    const auto row = row_of(x, static_cast<int64_t>(r));
    const Real scale = 1 / std::sqrt(mean_square(row) + kRmsnormEps);
    for (int64_t j = 0; j < c; ++j) {
      const auto k = static_cast<size_t>(j);
      const Real y = row[k] * scale * w.values[k];
      const auto abs_y = static_cast<double>(std::abs(y));
      out.add(y,
              u * abs_y * ((sum_units(c) + 2) / 2 + kRsqrtUnits + 2) +
                  2 * io_rounding(x.dtype, abs_y) + floor_for(x.dtype),
              at(kinds[r], c, j));
    }
  }
}

// ---------------------------------------------------------------------------
// The graphs, one package for all.

// Rows and width of the row-wise graphs: width 7 also gets a static
// specialization (literal loop bounds), the other widths run the general one.
kiln::SymDim rows() { return kiln::sym("n", {.max = 64}); }
kiln::SymDim width() { return kiln::sym("c", {.max = 4096, .hot = {7}}); }

template <DType T>
kiln::Outputs softmax_graph() {
  auto n = rows();
  auto c = width();
  auto x = kiln::input("x", T, {n, c});
  return kiln::outputs(kiln::softmax(x), kiln::log_softmax(x));
}

// Inputs are declared one statement each: their order is the graph's, and
// a call's arguments are evaluated in no set order.
template <DType T>
kiln::Outputs layernorm_graph() {
  auto n = rows();
  auto c = width();
  auto x = kiln::input("x", T, {n, c});
  auto w = kiln::input("w", T, {c});
  auto b = kiln::input("b", T, {c});
  return kiln::outputs(kiln::layernorm(x, w, b));
}

template <DType T>
kiln::Outputs rmsnorm_graph() {
  auto n = rows();
  auto c = width();
  auto x = kiln::input("x", T, {n, c});
  auto w = kiln::input("w", T, {c});
  return kiln::outputs(kiln::rmsnorm(x, w));
}

// The README's rmsnorm, its casts written out, beside the composite.
kiln::Outputs rmsnorm_readme_graph() {
  auto n = rows();
  auto c = width();
  auto x = kiln::input("x", kiln::bf16, {n, c});
  auto w = kiln::input("w", kiln::bf16, {c});
  auto r = kiln::rsqrt(kiln::mean(kiln::square(kiln::cast(x, kiln::f32)), -1, true) + 1e-6f);
  return kiln::outputs(kiln::cast(kiln::cast(x, kiln::f32) * r, kiln::bf16) * w,
                       kiln::rmsnorm(x, w));
}

kiln::Outputs gelu_graph() {
  auto n = kiln::sym("n", {.max = 1 << 16});
  auto x32 = kiln::input("x32", kiln::f32, {n});
  auto x64 = kiln::input("x64", kiln::f64, {n});
  auto x16 = kiln::input("x16", kiln::bf16, {n});
  return kiln::outputs(kiln::gelu(x32), kiln::gelu(x64), kiln::gelu(x16));
}

// Cross-entropy as users write it: the target's log-probability picked by
// an iota comparison (negated, per row and its mean), and logsumexp(x) -
// x[target] (the same loss, through the max written out).
kiln::Outputs cross_entropy_graph() {
  auto n = rows();
  auto c = width();
  auto x = kiln::input("logits", kiln::f32, {n, c});
  auto target = kiln::input("target", kiln::i64, {n});
  auto hot = kiln::eq(kiln::iota({n, c}, 1), kiln::unsqueeze(target, 1));
  auto nll = -kiln::sum(kiln::where(hot, kiln::log_softmax(x), kiln::constant(0.0)), -1);
  auto m = kiln::max(x, -1, true);
  auto lse = kiln::squeeze(m, -1) + kiln::log(kiln::sum(kiln::exp(x - m), -1));
  auto lse_loss = lse - kiln::sum(kiln::where(hot, x, kiln::constant(0.0)), -1);
  return kiln::outputs(nll, kiln::mean(nll, 0), lse_loss, kiln::mean(lse_loss, 0));
}

// The gather form: log-probabilities flattened, each row's target picked at
// row * C + target, the loss their negated mean (static shapes: a flatten
// needs constant dims).
constexpr int64_t kGatherClasses = 1023;
kiln::Outputs cross_entropy_gather_graph() {
  const auto rows = static_cast<int64_t>(kLogitKinds.size());
  auto x = kiln::input("logits", kiln::f32, {rows, kGatherClasses});
  auto target = kiln::input("target", kiln::i64, {rows});
  auto flat = kiln::reshape(kiln::log_softmax(x), {rows * kGatherClasses});
  auto index = kiln::iota({rows}, 0) * static_cast<double>(kGatherClasses) + target;
  return kiln::outputs(-kiln::mean(kiln::gather(flat, index, 0), 0));
}

struct Built {
  std::map<std::string, kiln::ir::Graph> graphs;
  kiln::Package package;
};

// An exclusive flock on a file, held for the object's life.
class FileLock {
 public:
  explicit FileLock(const fs::path& path)
      : fd_(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644)) {
    if (fd_ < 0) throw std::runtime_error("cannot open " + path.string());
    if (::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      throw std::runtime_error("cannot lock " + path.string());
    }
  }
  ~FileLock() { ::close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

// The best CPU level of this host (the target a deployment runs): one
// target, so clang++ runs once per kernel.
std::string host_target() {
  return "cpu:" + std::string(kiln::detail::cpu_level_name(kiln::detail::host_cpu_level()));
}

Built build() {
  const std::vector<kiln::ir::Graph> traced = {
      kiln::trace("softmax_f32", &softmax_graph<DType::f32>),
      kiln::trace("softmax_f64", &softmax_graph<DType::f64>),
      kiln::trace("softmax_f16", &softmax_graph<DType::f16>),
      kiln::trace("layernorm_f32", &layernorm_graph<DType::f32>),
      kiln::trace("layernorm_f64", &layernorm_graph<DType::f64>),
      kiln::trace("layernorm_bf16", &layernorm_graph<DType::bf16>),
      kiln::trace("rmsnorm_f32", &rmsnorm_graph<DType::f32>),
      kiln::trace("rmsnorm_f64", &rmsnorm_graph<DType::f64>),
      kiln::trace("rmsnorm_bf16", &rmsnorm_readme_graph),
      kiln::trace("gelu", &gelu_graph),
      kiln::trace("cross_entropy", &cross_entropy_graph),
      kiln::trace("cross_entropy_gather", &cross_entropy_gather_graph),
  };
  const fs::path dir = fs::path(KILN_TEST_BINARY_DIR) / "composites";
  kiln::compiler::GeneratorOptions o;
  o.name = "composites";
  o.cpp_namespace = "composites";
  o.targets = {host_target()};
  o.out_dir = dir / "out";
  o.work_dir = dir / "work";
  o.cxx = KILN_TEST_CLANGXX;
  o.ninja = KILN_TEST_NINJA;
  kiln::OpenOptions open;
  open.stance = kiln::Stance::fail_on_recompile;
  // ctest runs each test in a process of its own, several at once: one
  // builds while the others wait here, then find every kernel up to date and
  // the package unchanged (the generator leaves an unchanged file alone).
  fs::create_directories(dir);
  const FileLock lock(dir / "build.lock");
  Built b{{}, kiln::Package::open(kiln::compiler::run_generator(o, traced).package, open)};
  for (const auto& g : traced) b.graphs.emplace(g.name, g);
  return b;
}

Built& built() {
  static Built b = build();
  return b;
}

// ---------------------------------------------------------------------------
// Checking.

// An output against its reference: the worst error / bound (NaN: infinite)
// and that element, and how many are out of bounds.
struct Comparison {
  double ratio = 0;
  std::string worst;
  size_t out = 0;
};

Comparison compare(const HostTensor& got, const Expected& e) {
  Comparison c;
  if (got.values.size() != e.want.size()) {
    c.ratio = INFINITY;
    c.out = e.want.size();
    c.worst = "got " + std::to_string(got.values.size()) + " elements";
    return c;
  }
  size_t at = 0;
  for (size_t i = 0; i < e.want.size(); ++i) {
    const double err = std::abs(got.values[i] - e.want[i]);
    const double ratio = std::isnan(err) ? INFINITY : err / e.bound[i];
    if (ratio > 1) ++c.out;
    if (ratio > c.ratio || i == 0) {
      c.ratio = ratio;
      at = i;
    }
  }
  std::ostringstream s;
  s.precision(9);
  s << e.where[at] << ": got " << got.values[at] << ", want " << e.want[at] << ", bound "
    << e.bound[at];
  c.worst = s.str();
  return c;
}

// The worst comparison per label, interpreter and compiled, printed by each
// test: how close the values come to their bounds.
struct Worst {
  Comparison interpreter, compiled;
};
std::map<std::string, Worst>& worst() {
  static std::map<std::string, Worst> w;
  return w;
}

void keep_worst(Comparison& kept, const Comparison& c) {
  if (c.ratio >= kept.ratio) kept = c;
}

// Runs `graph` on `inputs` through the interpreter and the package and
// checks each output against its reference.
void check(const std::string& graph, std::vector<HostTensor> inputs,
           const std::vector<Expected>& expected, const std::string& what) {
  Built& b = built();
  const kiln::ir::Graph& g = b.graphs.at(graph);
  const kiln_test::RandomCall call(g, std::move(inputs));
  ASSERT_EQ(call.want().size(), expected.size());
  kiln::Graph& compiled_graph = b.package.graph(graph);
  const std::string spec(compiled_graph.select(call.inputs(), call.outputs()));
  compiled_graph.call(call.inputs(), call.outputs());
  for (size_t o = 0; o < expected.size(); ++o) {
    const Expected& e = expected[o];
    Worst& w = worst()[e.label];
    const Comparison interpreted = compare(call.want()[o], e);
    EXPECT_EQ(interpreted.out, 0u)
        << e.label << " (" << what << "), interpreter: " << interpreted.out << " of "
        << e.want.size() << " elements out of bounds; worst " << interpreted.ratio
        << " of its bound at " << interpreted.worst;
    keep_worst(w.interpreter, interpreted);
    const Comparison compiled = compare(call.got(o), e);
    EXPECT_EQ(compiled.out, 0u) << e.label << " (" << what << "), compiled for " << host_target()
                                << ", " << spec << ": " << compiled.out << " of " << e.want.size()
                                << " elements out of bounds; worst " << compiled.ratio
                                << " of its bound at " << compiled.worst;
    keep_worst(w.compiled, compiled);
  }
}

void print_worst(const std::string& prefix) {
  for (const auto& [label, w] : worst()) {
    if (label.rfind(prefix, 0) != 0) continue;
    std::printf("[composites] %s: worst error / bound: interpreter %.3g (%s), compiled %.3g (%s)\n",
                label.c_str(), w.interpreter.ratio, w.interpreter.worst.c_str(), w.compiled.ratio,
                w.compiled.worst.c_str());
  }
}

std::string dtype_label(DType t) { return std::string(kiln::dtype_name(t)); }

// ---------------------------------------------------------------------------
// The tests.

TEST(Composites, SoftmaxAndLogSoftmax) {
  std::mt19937_64 rng(13);
  for (DType t : {DType::f32, DType::f64, DType::f16}) {
    for (int64_t c : kWidths) {
      HostTensor x = make_rows(t, kLogitKinds, c, rng);
      std::vector<Expected> e = {{"softmax " + dtype_label(t)}, {"log_softmax " + dtype_label(t)}};
      softmax_expected(x, kLogitKinds, e[0], e[1]);
      check("softmax_" + dtype_label(t), {x}, e, "width " + std::to_string(c));
    }
  }
  print_worst("softmax");
  print_worst("log_softmax");
}

TEST(Composites, Layernorm) {
  std::mt19937_64 rng(17);
  for (DType t : {DType::f32, DType::f64, DType::bf16}) {
    for (int64_t c : kWidths) {
      HostTensor x = make_rows(t, kNormKinds, c, rng);
      // Weights of either sign away from 0, biases in [-1, 1].
      HostTensor w = make_vector(t, c, 0.5, 1.5, rng);
      for (double& v : w.values) v = std::uniform_int_distribution<int>(0, 1)(rng) ? v : -v;
      HostTensor b = make_vector(t, c, -1, 1, rng);
      std::vector<Expected> e = {{"layernorm " + dtype_label(t)}};
      layernorm_expected(x, w, b, kNormKinds, e[0]);
      check("layernorm_" + dtype_label(t), {x, w, b}, e, "width " + std::to_string(c));
    }
  }
  print_worst("layernorm");
}

TEST(Composites, Rmsnorm) {
  std::mt19937_64 rng(19);
  for (DType t : {DType::f32, DType::f64, DType::bf16}) {
    for (int64_t c : kWidths) {
      HostTensor x = make_rows(t, kRmsKinds, c, rng);
      HostTensor w = make_vector(t, c, 0.5, 1.5, rng);
      Expected composite{"rmsnorm " + dtype_label(t)};
      rmsnorm_expected(x, w, kRmsKinds, composite);
      // bf16: the README's graph (its casts written out), then the
      // composite; one reference.
      std::vector<Expected> e;
      if (t == DType::bf16) {
        e.push_back(composite);
        e.back().label = "rmsnorm bf16, README's casts";
      }
      e.push_back(std::move(composite));
      check("rmsnorm_" + dtype_label(t), {x, w}, e, "width " + std::to_string(c));
    }
  }
  print_worst("rmsnorm");
}

// gelu over [-10, 10] and at its landmarks (0, tiny, the f32 kernel's clamp
// at 5.42, large). The bound: erf within 8 ulps of 1 (8 u; the f32 kernel's
// rational erf, 1/sqrt 2 folded into its coefficients, measured 4.3)
// carried through 0.5 x, so 4 u |x| (2.6e-7 |x| in f32: docs/codegen.md
// states its gelu's absolute error below 1e-6), plus the products'
// roundings.
TEST(Composites, GeluIsErfExact) {
  std::mt19937_64 rng(23);
  std::uniform_real_distribution<double> dist(-10, 10);
  std::vector<double> xs(4000);
  for (double& v : xs) v = dist(rng);
  for (double v : {0.0, 1e-30, 1e-3, 0.5, 1.0, 1.5, 2.0, 3.0, 5.42, 5.5, 6.0, 30.0, 1e4}) {
    xs.push_back(v);
    xs.push_back(-v);
  }
  const auto n = static_cast<int64_t>(xs.size());
  std::vector<HostTensor> inputs;
  std::vector<Expected> e;
  for (DType t : {DType::f32, DType::f64, DType::bf16}) {
    HostTensor x{t, {n}, {}};
    Expected out{"gelu " + dtype_label(t)};
    const double u = compute_roundoff(t);
    for (double v : xs) {
      const double xv = kiln::compiler::round_to_dtype(v, t);
      x.values.push_back(xv);
      const auto y = static_cast<double>(gelu_reference(xv));
      out.add(y, u * (4 * std::abs(xv) + 4 * std::abs(y)) + io_rounding(t, y) + floor_for(t),
              "x = " + std::to_string(xv));
    }
    inputs.push_back(std::move(x));
    e.push_back(std::move(out));
  }
  check("gelu", std::move(inputs), e, std::to_string(n) + " values");
  print_worst("gelu");
}

// A row's loss and its bound, per pattern: -log p_target (log_softmax's
// bound at the target), and lse - x[target] = (max + log S) - x[target],
// whose two roundings are relative to |max + log S| and the loss.
struct RowLoss {
  Real loss;
  double nll_bound, lse_bound;
};

RowLoss row_loss(std::span<const double> row, int64_t target) {
  const double u = compute_roundoff(DType::f32);
  const SoftmaxRow s(row);
  const Real loss = (s.max - row[static_cast<size_t>(target)]) + s.log_s;  // -log p_target
  const auto d = static_cast<double>(s.max - row[static_cast<size_t>(target)]);
  const auto log_s = static_cast<double>(s.log_s);
  const double s_units =
      static_cast<double>(s.shift) + kExpUnits + sum_units(static_cast<int64_t>(row.size()));
  const double common = (kLogUnits + 1) * log_s + s_units + static_cast<double>(loss);
  return {loss, u * (2 * d + common) + FLT_MIN,
          u * (d + common + 2 * (std::abs(static_cast<double>(s.max)) + log_s)) + FLT_MIN};
}

// The mean of per-row losses: their bounds averaged, plus the sum's
// rounding over the rows.
void add_mean(Expected& e, const std::vector<Real>& losses, const std::vector<double>& bounds) {
  Sum l, b, a;
  for (size_t i = 0; i < losses.size(); ++i) {
    l.add(losses[i]);
    b.add(bounds[i]);
    a.add(std::abs(losses[i]));
  }
  const auto n = static_cast<Real>(losses.size());
  const Real bound = b.value() / n +
                     compute_roundoff(DType::f32) *
                         (sum_units(static_cast<int64_t>(losses.size())) + 1) * a.value() / n +
                     FLT_MIN;
  e.add(l.value() / n, static_cast<double>(bound), "mean");
}

TEST(Composites, CrossEntropyPatterns) {
  std::mt19937_64 rng(29);
  auto targets = [&](const HostTensor& x) {
    // A random class; the dominant row's target is its dominant logit, so
    // its loss is log1p(tiny).
    const int64_t c = x.shape[1];
    HostTensor t{DType::i64, {x.shape[0]}, {}};
    for (size_t r = 0; r < kLogitKinds.size(); ++r) {
      const auto row = row_of(x, static_cast<int64_t>(r));
      t.values.push_back(
          kLogitKinds[r] == Kind::dominant
              ? static_cast<double>(std::max_element(row.begin(), row.end()) - row.begin())
              : static_cast<double>(std::uniform_int_distribution<int64_t>(0, c - 1)(rng)));
    }
    return t;
  };
  for (int64_t c : kWidths) {
    HostTensor x = make_rows(DType::f32, kLogitKinds, c, rng);
    HostTensor t = targets(x);
    std::vector<Expected> e = {{"cross_entropy nll"},
                               {"cross_entropy nll mean"},
                               {"cross_entropy lse - x[t]"},
                               {"cross_entropy lse - x[t] mean"}};
    std::vector<Real> losses;
    std::vector<double> nll_bounds, lse_bounds;
    for (size_t r = 0; r < kLogitKinds.size(); ++r) {
      const auto target = static_cast<int64_t>(t.values[r]);
      const RowLoss l = row_loss(row_of(x, static_cast<int64_t>(r)), target);
      const std::string where = at(kLogitKinds[r], c, target);
      e[0].add(l.loss, l.nll_bound, where);
      e[2].add(l.loss, l.lse_bound, where);
      losses.push_back(l.loss);
      nll_bounds.push_back(l.nll_bound);
      lse_bounds.push_back(l.lse_bound);
    }
    add_mean(e[1], losses, nll_bounds);
    add_mean(e[3], losses, lse_bounds);
    check("cross_entropy", {x, t}, e, "width " + std::to_string(c));
  }
  {
    HostTensor x = make_rows(DType::f32, kLogitKinds, kGatherClasses, rng);
    HostTensor t = targets(x);
    std::vector<Real> losses;
    std::vector<double> bounds;
    for (size_t r = 0; r < kLogitKinds.size(); ++r) {
      const RowLoss l =
          row_loss(row_of(x, static_cast<int64_t>(r)), static_cast<int64_t>(t.values[r]));
      losses.push_back(l.loss);
      bounds.push_back(l.nll_bound);
    }
    std::vector<Expected> e = {{"cross_entropy gather mean"}};
    add_mean(e[0], losses, bounds);
    check("cross_entropy_gather", {x, t}, e, "width " + std::to_string(kGatherClasses));
  }
  print_worst("cross_entropy");
}

}  // namespace
