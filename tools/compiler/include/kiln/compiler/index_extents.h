// What 32-bit indexing depends on: the element counts a specialization's
// kernels index (every plan buffer and every fused group's domain), as
// expressions of the symbols, for the IndexWidth guard that admits a call
// to kernels built with int indices.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/ir.h"
#include "kiln/compiler/size_expr.h"

namespace kiln::compiler {

// Each distinct extent once, in first-seen order (buffers, then domains),
// with the specialization's static symbols bound. Constants are included:
// a static extent at or above the limit makes 32-bit indexing impossible.
std::vector<SizeExpr> index_extents(const ir::Graph& g, const ir::SymbolValues& static_values,
                                    const std::vector<PlanBuffer>& buffers);

// The largest value `e` takes over the symbols' declared ranges (static
// values fixed), when e is monotone there (constants, symbols, +, *, min,
// max over non-negative values); nullopt otherwise or when it overflows.
std::optional<int64_t> max_over_ranges(const ir::Graph& g, const ir::SymbolValues& static_values,
                                       const SizeExpr& e);

}  // namespace kiln::compiler
