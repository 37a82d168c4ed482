#include "size_expr.h"

#include <algorithm>
#include <limits>

#include "kiln/error.h"
#include "kiln/package_reader.h"
#include "text.h"

namespace kiln::detail {
namespace {

[[noreturn]] void arithmetic_error(const char* what, const char* why) {
  throw Error(ErrorCode::invalid_argument, cat("kiln: size expression ", what, " ", why));
}

// Both divisions round toward their infinity; the caller has excluded a zero
// divisor and INT64_MIN / -1.
int64_t floor_div(int64_t a, int64_t b) noexcept {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t ceil_div(int64_t a, int64_t b) noexcept {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) == (b < 0))) ++q;
  return q;
}

const char* op_text(fb::ExprOpKind kind) {
  switch (kind) {
    case fb::ExprOpKind::Add:
      return " + ";
    case fb::ExprOpKind::Sub:
      return " - ";
    case fb::ExprOpKind::Mul:
      return " * ";
    case fb::ExprOpKind::FloorDiv:
      return " / ";
    case fb::ExprOpKind::CeilDiv:
      return " /^ ";
    default:
      return nullptr;
  }
}

}  // namespace

SizeProgram::SizeProgram(const fb::SizeExpr* expr, int64_t fallback) {
  if (expr != nullptr && expr->ops() != nullptr && expr->ops()->size() > 0) {
    ops_.reserve(expr->ops()->size());
    for (const fb::ExprOp* op : *expr->ops()) ops_.push_back(*op);
  } else {
    ops_.emplace_back(fb::ExprOpKind::Const, fallback);
  }
}

SizeProgram::Outcome SizeProgram::run(const int64_t* symbols, int64_t& value) const noexcept {
  int64_t stack[kMaxExprStack];
  size_t depth = 0;
  for (const fb::ExprOp& op : ops_) {
    if (op.kind() == fb::ExprOpKind::Const || op.kind() == fb::ExprOpKind::Symbol) {
      if (depth >= kMaxExprStack) return Outcome::malformed;
      stack[depth++] = op.kind() == fb::ExprOpKind::Const ? op.value() : symbols[op.value()];
      continue;
    }
    if (depth < 2) return Outcome::malformed;
    const int64_t b = stack[--depth];
    const int64_t a = stack[depth - 1];
    int64_t r = 0;
    switch (op.kind()) {
      case fb::ExprOpKind::Add:
        if (__builtin_add_overflow(a, b, &r)) return Outcome::overflow;
        break;
      case fb::ExprOpKind::Sub:
        if (__builtin_sub_overflow(a, b, &r)) return Outcome::overflow;
        break;
      case fb::ExprOpKind::Mul:
        if (__builtin_mul_overflow(a, b, &r)) return Outcome::overflow;
        break;
      case fb::ExprOpKind::FloorDiv:
      case fb::ExprOpKind::CeilDiv:
        if (b == 0) return Outcome::division_by_zero;
        if (a == std::numeric_limits<int64_t>::min() && b == -1) return Outcome::overflow;
        r = op.kind() == fb::ExprOpKind::FloorDiv ? floor_div(a, b) : ceil_div(a, b);
        break;
      case fb::ExprOpKind::Max:
        r = std::max(a, b);
        break;
      case fb::ExprOpKind::Min:
        r = std::min(a, b);
        break;
      default:
        return Outcome::unknown_op;
    }
    stack[depth - 1] = r;
  }
  if (depth != 1) return Outcome::malformed;
  value = stack[0];
  return Outcome::ok;
}

int64_t SizeProgram::evaluate(const int64_t* symbols, const char* what) const {
  int64_t value = 0;
  switch (run(symbols, value)) {
    case Outcome::ok:
      return value;
    case Outcome::overflow:
      arithmetic_error(what, "overflows");
    case Outcome::division_by_zero:
      arithmetic_error(what, "divides by zero");
    case Outcome::unknown_op:
      arithmetic_error(what, "has an unknown op");
    case Outcome::malformed:
      break;
  }
  // Programs are checked by validate_manifest(); this guards the invariant
  // (never hit for a validated program) so a bad one cannot read past the
  // stack.
  throw Error(ErrorCode::internal, cat("kiln: size expression ", what, " is malformed"));
}

bool SizeProgram::try_evaluate(const int64_t* symbols, int64_t& value) const noexcept {
  return run(symbols, value) == Outcome::ok;
}

std::string SizeProgram::to_string(const std::vector<std::string>& symbol_names) const {
  std::vector<std::string> stack;
  for (const fb::ExprOp& op : ops_) {
    if (op.kind() == fb::ExprOpKind::Const) {
      stack.push_back(std::to_string(op.value()));
    } else if (op.kind() == fb::ExprOpKind::Symbol) {
      const auto s = static_cast<size_t>(op.value());
      stack.push_back(s < symbol_names.size() ? symbol_names[s] : cat("$", op.value()));
    } else if (stack.size() >= 2) {
      std::string b = std::move(stack.back());
      stack.pop_back();
      std::string a = std::move(stack.back());
      if (const char* infix = op_text(op.kind())) {
        stack.back() = cat("(", a, infix, b, ")");
      } else {
        stack.back() = cat(op.kind() == fb::ExprOpKind::Max ? "max(" : "min(", a, ", ", b, ")");
      }
    }
  }
  if (stack.size() != 1) return "?";
  std::string text = std::move(stack.back());
  // The outermost parentheses say nothing.
  if (text.size() > 2 && text.front() == '(' && text.back() == ')') {
    int depth = 0;
    bool outer = true;
    for (size_t i = 0; i + 1 < text.size(); ++i) {
      depth += text[i] == '(' ? 1 : text[i] == ')' ? -1 : 0;
      if (depth == 0) {
        outer = false;
        break;
      }
    }
    if (outer) text = text.substr(1, text.size() - 2);
  }
  return text;
}

std::string size_expr_text(const fb::SizeExpr* expr, const std::vector<std::string>& symbol_names) {
  if (expr == nullptr || expr->ops() == nullptr || expr->ops()->size() == 0) return "-";
  return SizeProgram(expr, 0).to_string(symbol_names);
}

}  // namespace kiln::detail
