#include "kiln/compiler/index_extents.h"

#include <algorithm>
#include <stdexcept>

#include "kiln/compiler/schedule.h"

namespace kiln::compiler {

std::vector<SizeExpr> index_extents(const ir::Graph& g, const ir::SymbolValues& static_values,
                                    const std::vector<PlanBuffer>& buffers) {
  std::vector<SizeExpr> out;
  auto add = [&](SizeExpr e) {
    if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(std::move(e));
  };
  for (const PlanBuffer& b : buffers) add(b.numel);
  // A group's domain need not be any buffer's shape: sum(a[n, 1] + b[1, C])
  // iterates n * C elements and stores n.
  for (const FusedGroup& group : schedule_graph(g).groups) {
    add(SizeExpr::product(bind_shape(group.domain(), static_values)));
  }
  return out;
}

std::optional<int64_t> max_over_ranges(const ir::Graph& g, const ir::SymbolValues& static_values,
                                       const SizeExpr& e) {
  ir::SymbolValues highest(g.symbols.size(), 0);
  for (size_t s = 0; s < g.symbols.size(); ++s) {
    if (g.symbols[s].min < 0) return std::nullopt;
    highest[s] = static_values[s] >= 0 ? static_values[s] : g.symbols[s].max;
  }
  for (const ExprOp& op : e.ops()) {
    switch (op.kind) {
      case ExprOpKind::constant:
        if (op.value < 0) return std::nullopt;
        break;
      case ExprOpKind::symbol:
      case ExprOpKind::add:
      case ExprOpKind::mul:
      case ExprOpKind::min:
      case ExprOpKind::max:
        break;
      default:
        return std::nullopt;
    }
  }
  try {
    return e.evaluate(highest);
  } catch (const std::overflow_error&) {
    return std::nullopt;
  }
}

}  // namespace kiln::compiler
