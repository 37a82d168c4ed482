// Sizes as postfix programs over symbol values: the compiler-side twin of
// kiln.fb.SizeExpr, so launch plans are data rather than host code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/compiler/ir.h"

namespace kiln::compiler {

// Numeric values equal kiln.fb.ExprOpKind.
enum class ExprOpKind : uint8_t {
  constant = 0,
  symbol = 1,
  add = 2,
  sub = 3,
  mul = 4,
  floor_div = 5,
  ceil_div = 6,
  max = 7,
  min = 8
};

struct ExprOp {
  ExprOpKind kind;
  int64_t value;  // the constant, or the symbol index
  friend bool operator==(const ExprOp&, const ExprOp&) = default;
};

class SizeExpr {
 public:
  static SizeExpr constant(int64_t v);
  // An expression as stored (a package's SizeExpr, read back).
  static SizeExpr from_ops(std::vector<ExprOp> ops);
  static SizeExpr symbol(int32_t s);
  static SizeExpr of_dim(const ir::Dim& d);
  // Product of dims; folds constants, so a static shape gives one constant.
  static SizeExpr product(const ir::Shape& dims);
  static SizeExpr product(const ir::Shape& dims, size_t begin, size_t end);

  SizeExpr operator*(const SizeExpr& other) const;
  SizeExpr operator+(const SizeExpr& other) const;
  SizeExpr ceil_div(const SizeExpr& other) const;
  SizeExpr min(const SizeExpr& other) const;

  const std::vector<ExprOp>& ops() const { return ops_; }
  bool is_constant() const { return ops_.size() == 1 && ops_[0].kind == ExprOpKind::constant; }
  int64_t evaluate(const ir::SymbolValues& values) const;
  std::string to_string(const ir::Graph& g) const;  // "n*4096"
  // C++ expression text reading symbol s as `syms[s]`.
  std::string to_cpp(const char* syms_name = "syms") const;
  friend bool operator==(const SizeExpr&, const SizeExpr&) = default;

 private:
  std::vector<ExprOp> ops_;
};

// Substitutes static symbol values (value >= 0) into dims.
ir::Shape bind_shape(const ir::Shape& s, const ir::SymbolValues& static_values);

}  // namespace kiln::compiler
