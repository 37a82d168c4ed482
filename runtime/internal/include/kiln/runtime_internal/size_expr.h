// SizeExpr programs (postfix, over the graph's symbol values) as the launcher
// evaluates them: copied out of the manifest once, evaluated per call with
// checked arithmetic on a fixed stack.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/abi/kiln_package_generated.h"

namespace kiln::detail {

class SizeProgram {
 public:
  SizeProgram() = default;
  // `expr` must have passed validate_manifest(); null or empty means
  // `fallback` (a constant).
  SizeProgram(const fb::SizeExpr* expr, int64_t fallback);

  // Throws Error(invalid_argument) on overflow or division by zero, naming
  // `what` ("launch 0 work_items").
  int64_t evaluate(const int64_t* symbols, const char* what) const;
  // For guards: false where evaluate() would throw.
  bool try_evaluate(const int64_t* symbols, int64_t& value) const noexcept;

  // "n * 64": for inspect and messages.
  std::string to_string(const std::vector<std::string>& symbol_names) const;

 private:
  enum class Outcome : uint8_t { ok, overflow, division_by_zero, unknown_op, malformed };
  Outcome run(const int64_t* symbols, int64_t& value) const noexcept;

  std::vector<fb::ExprOp> ops_;
};

std::string size_expr_text(const fb::SizeExpr* expr, const std::vector<std::string>& symbol_names);

}  // namespace kiln::detail
