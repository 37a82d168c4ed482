#include "kiln/compiler/size_expr.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace kiln::compiler {
namespace {

int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) throw std::overflow_error("kiln: size overflows int64");
  return r;
}

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) throw std::overflow_error("kiln: size overflows int64");
  return r;
}

}  // namespace

SizeExpr SizeExpr::constant(int64_t v) {
  SizeExpr e;
  e.ops_.push_back({ExprOpKind::constant, v});
  return e;
}

SizeExpr SizeExpr::from_ops(std::vector<ExprOp> ops) {
  SizeExpr e;
  e.ops_ = std::move(ops);
  return e;
}

SizeExpr SizeExpr::symbol(int32_t s) {
  SizeExpr e;
  e.ops_.push_back({ExprOpKind::symbol, s});
  return e;
}

SizeExpr SizeExpr::of_dim(const ir::Dim& d) {
  return d.is_constant() ? constant(d.value) : symbol(d.sym);
}

SizeExpr SizeExpr::product(const ir::Shape& dims) { return product(dims, 0, dims.size()); }

SizeExpr SizeExpr::product(const ir::Shape& dims, size_t begin, size_t end) {
  int64_t folded = 1;
  SizeExpr e;
  bool any_symbol = false;
  for (size_t i = begin; i < end && i < dims.size(); ++i) {
    if (dims[i].is_constant()) {
      folded = checked_mul(folded, dims[i].value);
      continue;
    }
    e.ops_.push_back({ExprOpKind::symbol, dims[i].sym});
    if (any_symbol) e.ops_.push_back({ExprOpKind::mul, 0});
    any_symbol = true;
  }
  if (!any_symbol) return constant(folded);
  if (folded != 1) {
    e.ops_.push_back({ExprOpKind::constant, folded});
    e.ops_.push_back({ExprOpKind::mul, 0});
  }
  return e;
}

SizeExpr SizeExpr::operator*(const SizeExpr& other) const {
  if (is_constant() && other.is_constant())
    return constant(checked_mul(ops_[0].value, other.ops_[0].value));
  if (is_constant() && ops_[0].value == 1) return other;
  if (other.is_constant() && other.ops_[0].value == 1) return *this;
  SizeExpr e = *this;
  e.ops_.insert(e.ops_.end(), other.ops_.begin(), other.ops_.end());
  e.ops_.push_back({ExprOpKind::mul, 0});
  return e;
}

SizeExpr SizeExpr::operator+(const SizeExpr& other) const {
  if (is_constant() && other.is_constant())
    return constant(checked_add(ops_[0].value, other.ops_[0].value));
  SizeExpr e = *this;
  e.ops_.insert(e.ops_.end(), other.ops_.begin(), other.ops_.end());
  e.ops_.push_back({ExprOpKind::add, 0});
  return e;
}

SizeExpr SizeExpr::ceil_div(const SizeExpr& other) const {
  if (is_constant() && other.is_constant() && other.ops_[0].value > 0) {
    const int64_t a = ops_[0].value;
    const int64_t b = other.ops_[0].value;
    return constant(a / b + (a % b != 0 ? 1 : 0));
  }
  SizeExpr e = *this;
  e.ops_.insert(e.ops_.end(), other.ops_.begin(), other.ops_.end());
  e.ops_.push_back({ExprOpKind::ceil_div, 0});
  return e;
}

SizeExpr SizeExpr::min(const SizeExpr& other) const {
  if (is_constant() && other.is_constant())
    return constant(std::min(ops_[0].value, other.ops_[0].value));
  SizeExpr e = *this;
  e.ops_.insert(e.ops_.end(), other.ops_.begin(), other.ops_.end());
  e.ops_.push_back({ExprOpKind::min, 0});
  return e;
}

int64_t SizeExpr::evaluate(const ir::SymbolValues& values) const {
  std::vector<int64_t> stack;
  for (const auto& op : ops_) {
    if (op.kind == ExprOpKind::constant) {
      stack.push_back(op.value);
      continue;
    }
    if (op.kind == ExprOpKind::symbol) {
      stack.push_back(values.at(static_cast<size_t>(op.value)));
      continue;
    }
    if (stack.size() < 2) throw std::logic_error("kiln: malformed size expression");
    const int64_t b = stack.back();
    stack.pop_back();
    const int64_t a = stack.back();
    int64_t r = 0;
    switch (op.kind) {
      case ExprOpKind::add:
        r = checked_add(a, b);
        break;
      case ExprOpKind::sub:
        r = a - b;
        break;
      case ExprOpKind::mul:
        r = checked_mul(a, b);
        break;
      case ExprOpKind::floor_div:
        if (b == 0) throw std::domain_error("kiln: size expression divides by zero");
        r = a / b;
        break;
      case ExprOpKind::ceil_div:
        if (b == 0) throw std::domain_error("kiln: size expression divides by zero");
        r = a / b + (a % b != 0 ? 1 : 0);
        break;
      case ExprOpKind::max:
        r = a > b ? a : b;
        break;
      case ExprOpKind::min:
        r = a < b ? a : b;
        break;
      default:
        throw std::logic_error("kiln: malformed size expression");
    }
    stack.back() = r;
  }
  if (stack.size() != 1) throw std::logic_error("kiln: malformed size expression");
  return stack.back();
}

namespace {

const char* infix(ExprOpKind k) {
  switch (k) {
    case ExprOpKind::add:
      return " + ";
    case ExprOpKind::sub:
      return " - ";
    case ExprOpKind::mul:
      return "*";
    case ExprOpKind::floor_div:
      return " / ";
    default:
      return nullptr;
  }
}

template <typename Leaf>
std::string render(const std::vector<ExprOp>& ops, Leaf leaf) {
  std::vector<std::string> stack;
  for (const auto& op : ops) {
    if (op.kind == ExprOpKind::constant || op.kind == ExprOpKind::symbol) {
      stack.push_back(leaf(op));
      continue;
    }
    const std::string b = std::move(stack.back());
    stack.pop_back();
    const std::string a = std::move(stack.back());
    std::string text = "(";
    if (const char* in = infix(op.kind)) {
      text.append(a).append(in).append(b);
    } else if (op.kind == ExprOpKind::ceil_div) {
      text.append("(").append(a).append(" + ").append(b).append(" - 1) / ").append(b);
    } else {
      text.append(a).append(op.kind == ExprOpKind::max ? " > " : " < ").append(b);
      text.append(" ? ").append(a).append(" : ").append(b);
    }
    text += ")";
    stack.back() = std::move(text);
  }
  return stack.empty() ? "0" : stack.back();
}

}  // namespace

std::string SizeExpr::to_string(const ir::Graph& g) const {
  return render(ops_, [&](const ExprOp& op) {
    if (op.kind == ExprOpKind::constant) return std::to_string(op.value);
    const auto s = static_cast<size_t>(op.value);
    // (an append: GCC 12's -Wrestrict misfires on "?" + std::string&&)
    return s < g.symbols.size() ? g.symbols[s].name
                                : std::string("?").append(std::to_string(op.value));
  });
}

std::string SizeExpr::to_cpp(const char* syms_name) const {
  return render(ops_, [&](const ExprOp& op) {
    if (op.kind == ExprOpKind::constant) return "INT64_C(" + std::to_string(op.value) + ")";
    return std::string(syms_name) + "[" + std::to_string(op.value) + "]";
  });
}

ir::Shape bind_shape(const ir::Shape& s, const ir::SymbolValues& static_values) {
  ir::Shape out = s;
  for (auto& d : out) {
    if (!d.is_constant() && static_cast<size_t>(d.sym) < static_values.size() &&
        static_values[static_cast<size_t>(d.sym)] >= 0) {
      d = ir::Dim::constant(static_values[static_cast<size_t>(d.sym)]);
    }
  }
  return out;
}

}  // namespace kiln::compiler
