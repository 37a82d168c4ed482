// Double-precision reference semantics of every op. Values are rounded to
// their node's dtype after each op, so a bf16 tensor holds bf16 values here
// exactly as it does in memory.
#include "kiln/compiler/interpreter.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace kiln::compiler {
namespace {

std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& shape, size_t out_rank) {
  std::vector<int64_t> strides(out_rank, 0);
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    const size_t o = out_rank - (shape.size() - i);
    strides[o] = shape[i] == 1 ? 0 : stride;
    stride *= shape[i];
  }
  return strides;
}

// Index of the operand element that broadcasts to each output element.
std::vector<int64_t> gather_index(const std::vector<int64_t>& out_shape,
                                  const std::vector<int64_t>& in_shape) {
  int64_t numel = 1;
  for (int64_t d : out_shape) numel *= d;
  const auto strides = broadcast_strides(in_shape, out_shape.size());
  std::vector<int64_t> idx(static_cast<size_t>(numel));
  std::vector<int64_t> pos(out_shape.size(), 0);
  int64_t off = 0;
  for (int64_t i = 0; i < numel; ++i) {
    idx[static_cast<size_t>(i)] = off;
    for (size_t d = out_shape.size(); d-- > 0;) {
      ++pos[d];
      off += strides[d];
      if (pos[d] < out_shape[d]) break;
      off -= strides[d] * pos[d];
      pos[d] = 0;
    }
  }
  return idx;
}

double apply_unary(ir::Op op, double x, DType in_dtype) {
  switch (op) {
    case ir::Op::neg:
      return -x;
    case ir::Op::abs:
      return std::fabs(x);
    case ir::Op::exp:
      return std::exp(x);
    case ir::Op::log:
      return std::log(x);
    case ir::Op::sin:
      return std::sin(x);
    case ir::Op::cos:
      return std::cos(x);
    case ir::Op::tanh:
      return std::tanh(x);
    case ir::Op::sigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case ir::Op::relu:
      return x > 0 ? x : 0.0;
    case ir::Op::gelu:
      return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case ir::Op::sqrt:
      return std::sqrt(x);
    case ir::Op::rsqrt:
      return 1.0 / std::sqrt(x);
    case ir::Op::square:
      return x * x;
    case ir::Op::logical_not:
      return x != 0 ? 0.0 : 1.0;
    case ir::Op::cast:
      (void)in_dtype;
      return x;  // rounding to the target dtype happens on store
    case ir::Op::expand:
      return x;  // the broadcast is the operand's index
    default:
      throw std::logic_error("kiln: not a unary op");
  }
}

double apply_binary(ir::Op op, double a, double b) {
  switch (op) {
    case ir::Op::add:
      return a + b;
    case ir::Op::sub:
      return a - b;
    case ir::Op::mul:
      return a * b;
    case ir::Op::div:
      return a / b;
    case ir::Op::maximum:
      return (std::isnan(a) || std::isnan(b)) ? NAN : std::fmax(a, b);
    case ir::Op::minimum:
      return (std::isnan(a) || std::isnan(b)) ? NAN : std::fmin(a, b);
    case ir::Op::pow:
      return std::pow(a, b);
    case ir::Op::eq:
      return a == b ? 1.0 : 0.0;
    case ir::Op::ne:
      return a != b ? 1.0 : 0.0;
    case ir::Op::lt:
      return a < b ? 1.0 : 0.0;
    case ir::Op::le:
      return a <= b ? 1.0 : 0.0;
    case ir::Op::gt:
      return a > b ? 1.0 : 0.0;
    case ir::Op::ge:
      return a >= b ? 1.0 : 0.0;
    default:
      throw std::logic_error("kiln: not a binary op");
  }
}

// Reduces `in` over the node's axes into `out` (shape already set). Values
// are visited in row-major order within each output element, so argmax's
// first maximum is the one of smallest index.
void reduce(const ir::Node& n, const HostTensor& in, HostTensor& out) {
  const std::vector<int32_t> axes = ir::reduced_axes(n);
  const size_t rank = in.shape.size();
  std::vector<bool> reduced(rank, false);
  for (int32_t a : axes) reduced.at(static_cast<size_t>(a)) = true;
  // Output strides per input dim (0 along reduced dims), in elements.
  std::vector<int64_t> ostride(rank, 0);
  int64_t stride = 1;
  int64_t count = 1;  // elements per output value
  for (size_t d = rank; d-- > 0;) {
    if (reduced[d]) {
      count *= in.shape[d];
      continue;
    }
    ostride[d] = stride;
    stride *= in.shape[d];
  }
  const auto outs = static_cast<size_t>(out.numel());
  const bool arg = n.op == ir::Op::argmax;
  std::vector<double> acc(outs);
  std::vector<int64_t> seen(outs, 0);
  std::vector<int64_t> best(outs, 0);
  std::vector<int64_t> pos(rank, 0);
  const int64_t total = in.numel();
  const size_t axis = static_cast<size_t>(n.axis);
  int64_t o = 0;
  for (int64_t i = 0; i < total; ++i) {
    const double v = in.values[static_cast<size_t>(i)];
    const auto u = static_cast<size_t>(o);
    double& a = acc[u];
    if (seen[u]++ == 0) {
      a = v;
      best[u] = pos[axis];
    } else {
      switch (n.op) {
        case ir::Op::reduce_sum:
        case ir::Op::reduce_mean:
          a += v;
          break;
        case ir::Op::reduce_prod:
          a *= v;
          break;
        case ir::Op::reduce_max:
          a = std::fmax(a, v);
          break;
        case ir::Op::reduce_min:
          a = std::fmin(a, v);
          break;
        case ir::Op::argmax:
          // Strictly greater: the first maximum wins; the first NaN wins over numbers.
          if (!std::isnan(a) && (v > a || std::isnan(v))) {
            a = v;
            best[u] = pos[axis];
          }
          break;
        default:
          break;
      }
    }
    // Advance the multi-index and the output offset.
    for (size_t d = rank; d-- > 0;) {
      ++pos[d];
      o += ostride[d];
      if (pos[d] < in.shape[d]) break;
      o -= ostride[d] * pos[d];
      pos[d] = 0;
    }
  }
  for (size_t u = 0; u < outs; ++u) {
    double v = arg ? static_cast<double>(best[u]) : acc[u];
    if (n.op == ir::Op::reduce_mean) v /= static_cast<double>(count);
    out.values[u] = round_to_dtype(v, n.dtype);
  }
}

// out = a @ b over the last two dims, batch dims broadcast; exact products
// summed in double, rounded once to the dtype.
void matmul(const HostTensor& a, const HostTensor& b, HostTensor& out, DType dtype) {
  const size_t rank = out.shape.size();
  const int64_t m = out.shape[rank - 2];
  const int64_t n = out.shape[rank - 1];
  const int64_t k = a.shape.back();
  // The batch part of each operand, right-aligned and broadcast: the
  // gather_index of a [batch..., 1, 1] view gives each output batch's matrix.
  auto batch_shape = [&](const HostTensor& t) {
    std::vector<int64_t> s(t.shape.begin(), t.shape.end() - 2);
    s.push_back(1);
    s.push_back(1);
    return s;
  };
  std::vector<int64_t> out_batch(out.shape.begin(), out.shape.end() - 2);
  out_batch.push_back(1);
  out_batch.push_back(1);
  const std::vector<int64_t> ia = gather_index(out_batch, batch_shape(a));
  const std::vector<int64_t> ib = gather_index(out_batch, batch_shape(b));
  for (size_t batch = 0; batch < ia.size(); ++batch) {
    const double* pa = a.values.data() + ia[batch] * m * k;
    const double* pb = b.values.data() + ib[batch] * k * n;
    double* pd = out.values.data() + static_cast<int64_t>(batch) * m * n;
    // Row by row, so B is read along its rows; each sum still adds its
    // terms in order of x.
    std::vector<double> acc(static_cast<size_t>(n));
    for (int64_t i = 0; i < m; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t x = 0; x < k; ++x) {
        const double av = pa[i * k + x];
        const double* row = pb + x * n;
        for (int64_t j = 0; j < n; ++j) acc[static_cast<size_t>(j)] += av * row[j];
      }
      for (int64_t j = 0; j < n; ++j)
        pd[i * n + j] = round_to_dtype(acc[static_cast<size_t>(j)], dtype);
    }
  }
}

std::vector<int64_t> row_major_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * shape[d];
  return strides;
}

// The shape ops but expand (a pointwise identity): each output element, by
// its multi-index, from its operands' elements.
void shape_op(const ir::Node& n, const std::vector<const HostTensor*>& in, HostTensor& out) {
  if (n.op == ir::Op::reshape) {
    out.values = in[0]->values;
    return;
  }
  const size_t rank = out.shape.size();
  std::vector<int64_t> pos(rank, 0);
  const auto a = static_cast<size_t>(n.axis);
  std::vector<std::vector<int64_t>> strides;
  for (const HostTensor* t : in) strides.push_back(row_major_strides(t->shape));
  for (double& v : out.values) {
    switch (n.op) {
      case ir::Op::permute: {
        const auto& st = strides[0];
        int64_t off = 0;
        for (size_t j = 0; j < rank; ++j) off += pos[j] * st[static_cast<size_t>(n.axes[j])];
        v = in[0]->values[static_cast<size_t>(off)];
        break;
      }
      case ir::Op::slice: {
        const auto& st = strides[0];
        int64_t off = 0;
        for (size_t j = 0; j < rank; ++j) {
          off += (j == a ? n.params[0] + pos[j] * n.params[2] : pos[j]) * st[j];
        }
        v = in[0]->values[static_cast<size_t>(off)];
        break;
      }
      case ir::Op::concat: {
        int64_t at = pos[a];
        size_t k = 0;
        while (at >= in[k]->shape[a]) at -= in[k++]->shape[a];
        const auto& st = strides[k];
        int64_t off = 0;
        for (size_t j = 0; j < rank; ++j) off += (j == a ? at : pos[j]) * st[j];
        v = in[k]->values[static_cast<size_t>(off)];
        break;
      }
      case ir::Op::gather: {
        const HostTensor& table = *in[0];
        const HostTensor& idx = *in[1];
        const size_t q = idx.shape.size();
        const auto& ist = strides[1];
        int64_t ioff = 0;
        for (size_t j = 0; j < q; ++j) ioff += pos[a + j] * ist[j];
        const int64_t vocab = table.shape[a];
        auto i = static_cast<int64_t>(idx.values[static_cast<size_t>(ioff)]);
        if (i < 0) i += vocab;
        if (i < 0 || i >= vocab) {
          v = ir::gather_fill_value(n.dtype);
          break;
        }
        const auto& tst = strides[0];
        int64_t off = i * tst[a];
        for (size_t j = 0; j < a; ++j) off += pos[j] * tst[j];
        for (size_t j = a + 1; j < table.shape.size(); ++j) off += pos[j - 1 + q] * tst[j];
        v = table.values[static_cast<size_t>(off)];
        break;
      }
      case ir::Op::iota:
        v = round_to_dtype(static_cast<double>(pos[a]), n.dtype);
        break;
      default:
        throw std::logic_error("kiln: not a shape op");
    }
    for (size_t d = rank; d-- > 0;) {
      if (++pos[d] < out.shape[d]) break;
      pos[d] = 0;
    }
  }
}

}  // namespace

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<uint8_t> HostTensor::to_bytes() const {
  const size_t es = static_cast<size_t>(dtype_size(dtype));
  std::vector<uint8_t> out(values.size() * es);
  for (size_t i = 0; i < values.size(); ++i) {
    uint8_t* p = out.data() + i * es;
    const double v = values[i];
    switch (dtype) {
      case DType::f32: {
        const auto f = static_cast<float>(v);
        std::memcpy(p, &f, 4);
        break;
      }
      case DType::f64:
        std::memcpy(p, &v, 8);
        break;
      case DType::bf16: {
        const uint16_t b = float_to_bf16_bits(static_cast<float>(v));
        std::memcpy(p, &b, 2);
        break;
      }
      case DType::f16: {
        const uint16_t h = double_to_f16_bits(v);
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::i32: {
        const auto x = static_cast<int32_t>(round_to_dtype(v, DType::i32));
        std::memcpy(p, &x, 4);
        break;
      }
      case DType::i64: {
        const auto x = static_cast<int64_t>(round_to_dtype(v, DType::i64));
        std::memcpy(p, &x, 8);
        break;
      }
      case DType::boolean:
        *p = v != 0 ? 1 : 0;
        break;
    }
  }
  return out;
}

HostTensor HostTensor::from_bytes(DType dtype, std::vector<int64_t> shape, const void* data) {
  HostTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  const auto n = static_cast<size_t>(t.numel());
  t.values.resize(n);
  const auto* p = static_cast<const uint8_t*>(data);
  const size_t es = static_cast<size_t>(dtype_size(dtype));
  for (size_t i = 0; i < n; ++i, p += es) {
    switch (dtype) {
      case DType::f32: {
        float f = 0;
        std::memcpy(&f, p, 4);
        t.values[i] = f;
        break;
      }
      case DType::f64:
        std::memcpy(&t.values[i], p, 8);
        break;
      case DType::bf16: {
        uint16_t b = 0;
        std::memcpy(&b, p, 2);
        t.values[i] = bf16_bits_to_float(b);
        break;
      }
      case DType::f16: {
        uint16_t h = 0;
        std::memcpy(&h, p, 2);
        t.values[i] = f16_bits_to_double(h);
        break;
      }
      case DType::i32: {
        int32_t x = 0;
        std::memcpy(&x, p, 4);
        t.values[i] = x;
        break;
      }
      case DType::i64: {
        int64_t x = 0;
        std::memcpy(&x, p, 8);
        t.values[i] = static_cast<double>(x);
        break;
      }
      case DType::boolean:
        t.values[i] = *p != 0 ? 1.0 : 0.0;
        break;
    }
  }
  return t;
}

HostTensor random_tensor(DType dtype, std::vector<int64_t> shape, std::mt19937_64& rng) {
  HostTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.values.resize(static_cast<size_t>(t.numel()));
  std::uniform_real_distribution<double> mag(0.05, 2.0);
  std::uniform_int_distribution<int> ints(1, 9);
  std::bernoulli_distribution coin(0.5);
  for (auto& v : t.values) {
    if (dtype_is_float(dtype)) {
      v = round_to_dtype(coin(rng) ? mag(rng) : -mag(rng), dtype);
    } else if (dtype == DType::boolean) {
      v = coin(rng) ? 1.0 : 0.0;
    } else {
      v = ints(rng);
    }
  }
  return t;
}

ir::SymbolValues bind_symbols(const ir::Graph& g, const std::vector<HostTensor>& inputs) {
  if (inputs.size() != g.inputs.size()) {
    throw std::invalid_argument("kiln: graph '" + g.name + "' takes " +
                                std::to_string(g.inputs.size()) + " inputs, got " +
                                std::to_string(inputs.size()));
  }
  ir::SymbolValues values(g.symbols.size(), -1);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ir::Node& n = g.node(g.inputs[i]);
    const HostTensor& t = inputs[i];
    if (t.shape.size() != n.shape.size()) {
      throw std::invalid_argument("kiln: input '" + n.name + "': expected rank " +
                                  std::to_string(n.shape.size()) + ", got " +
                                  std::to_string(t.shape.size()));
    }
    if (t.dtype != n.dtype) {
      throw std::invalid_argument("kiln: input '" + n.name + "': expected dtype " +
                                  std::string(dtype_name(n.dtype)) + ", got " +
                                  std::string(dtype_name(t.dtype)));
    }
    if (static_cast<int64_t>(t.values.size()) != t.numel()) {
      throw std::invalid_argument("kiln: input '" + n.name + "': holds " +
                                  std::to_string(t.values.size()) + " values for its shape");
    }
    for (size_t d = 0; d < n.shape.size(); ++d) {
      const ir::Dim& dim = n.shape[d];
      const std::string where = "kiln: input '" + n.name + "' dim " + std::to_string(d);
      if (dim.is_constant()) {
        if (t.shape[d] != dim.value) {
          throw std::invalid_argument(where + ": expected " + std::to_string(dim.value) + ", got " +
                                      std::to_string(t.shape[d]));
        }
        continue;
      }
      const auto s = static_cast<size_t>(dim.sym);
      const ir::SymbolDecl& decl = g.symbols[s];
      if (values[s] >= 0 && values[s] != t.shape[d]) {
        throw std::invalid_argument(where + ": expected " + decl.name + " = " +
                                    std::to_string(values[s]) + ", got " +
                                    std::to_string(t.shape[d]));
      }
      if (t.shape[d] < decl.min || t.shape[d] > decl.max) {
        throw std::invalid_argument(where + ": " + decl.name + " = " + std::to_string(t.shape[d]) +
                                    " is outside [" + std::to_string(decl.min) + ", " +
                                    std::to_string(decl.max) + "]");
      }
      values[s] = t.shape[d];
    }
  }
  return values;
}

std::vector<HostTensor> interpret(const ir::Graph& g, const std::vector<HostTensor>& inputs) {
  const ir::SymbolValues syms = bind_symbols(g, inputs);
  std::vector<HostTensor> vals(g.nodes.size());
  for (size_t id = 0; id < g.nodes.size(); ++id) {
    const ir::Node& n = g.nodes[id];
    HostTensor& out = vals[id];
    out.dtype = n.dtype;
    out.shape = ir::eval_shape(n.shape, syms);
    if (n.op == ir::Op::input) {
      out.values = inputs[static_cast<size_t>(n.input_index)].values;
      continue;
    }
    out.values.resize(static_cast<size_t>(out.numel()));
    if (n.op == ir::Op::constant) {
      out.values[0] = round_to_dtype(n.scalar, n.dtype);
      continue;
    }
    auto operand = [&](size_t k) -> const HostTensor& {
      return vals[static_cast<size_t>(n.inputs[k])];
    };
    if (ir::is_reduction(n.op)) {
      reduce(n, operand(0), out);
      continue;
    }
    if (n.op == ir::Op::matmul) {
      matmul(operand(0), operand(1), out, n.dtype);
      continue;
    }
    if (ir::is_shape_op(n.op) && n.op != ir::Op::expand) {
      std::vector<const HostTensor*> ins;
      for (size_t k = 0; k < n.inputs.size(); ++k) ins.push_back(&operand(k));
      shape_op(n, ins, out);
      continue;
    }
    const size_t arity = n.inputs.size();
    std::vector<std::vector<int64_t>> index(arity);
    for (size_t k = 0; k < arity; ++k) index[k] = gather_index(out.shape, operand(k).shape);
    for (size_t i = 0; i < out.values.size(); ++i) {
      double v = 0;
      const double a = operand(0).values[static_cast<size_t>(index[0][i])];
      if (arity == 1) {
        v = apply_unary(n.op, a, operand(0).dtype);
      } else if (arity == 2) {
        v = apply_binary(n.op, a, operand(1).values[static_cast<size_t>(index[1][i])]);
      } else {
        v = a != 0 ? operand(1).values[static_cast<size_t>(index[1][i])]
                   : operand(2).values[static_cast<size_t>(index[2][i])];
      }
      out.values[i] = round_to_dtype(v, n.dtype);
    }
  }
  std::vector<HostTensor> outs;
  outs.reserve(g.outputs.size());
  for (int32_t o : g.outputs) outs.push_back(vals[static_cast<size_t>(o)]);
  return outs;
}

Tolerance tolerance_for(DType dtype) {
  switch (dtype) {
    case DType::f64:
      return {1e-10, 1e-9};
    case DType::f32:
      return {1e-5, 1e-4};
    case DType::f16:
      return {2e-3, 4e-3};
    case DType::bf16:
      return {1.6e-2, 3.2e-2};
    default:
      return {0, 0};
  }
}

double max_abs_error(const HostTensor& got, const HostTensor& want) {
  double worst = 0;
  const size_t n = std::min(got.values.size(), want.values.size());
  for (size_t i = 0; i < n; ++i) {
    const double a = got.values[i];
    const double b = want.values[i];
    if (std::isnan(a) && std::isnan(b)) continue;
    if (std::isinf(a) && a == b) continue;
    const double e = std::fabs(a - b);
    if (!(e <= worst)) worst = e;  // NaN-safe: a NaN error becomes the worst
  }
  return worst;
}

bool all_close(const HostTensor& got, const HostTensor& want, Tolerance tol, double* worst_ratio) {
  if (got.shape != want.shape || got.values.size() != want.values.size()) {
    if (worst_ratio != nullptr) *worst_ratio = INFINITY;
    return false;
  }
  double worst = 0;
  for (size_t i = 0; i < got.values.size(); ++i) {
    const double a = got.values[i];
    const double b = want.values[i];
    if (std::isnan(a) && std::isnan(b)) continue;
    if (std::isinf(b) && a == b) continue;
    const double bound = tol.atol + tol.rtol * std::fabs(b);
    const double e = std::fabs(a - b);
    const double ratio = bound > 0 ? e / bound : (e == 0 ? 0 : INFINITY);
    if (!(ratio <= worst)) worst = std::isnan(ratio) ? INFINITY : ratio;
  }
  if (worst_ratio != nullptr) *worst_ratio = worst;
  return worst <= 1.0;
}

}  // namespace kiln::compiler
