#include "matmul_plan.h"

#include <stdexcept>
#include <string>

#include "kiln/compiler/dtype_rounding.h"

namespace kiln::compiler {
MatmulPlan plan_matmul(const ir::Graph& g, const Schedule& s, int32_t gi,
                       const ir::SymbolValues& static_values) {
  const FusedGroup& G = s.groups.at(static_cast<size_t>(gi));
  if (G.matmul_of < 0) throw std::logic_error("kiln codegen: group is not a matmul group");
  MatmulPlan p;
  p.matmul = G.matmul_of;
  const ir::Node& mm = g.node(p.matmul);
  p.a = matmul_source(g, mm.inputs.at(0), &p.trans_a);
  p.b = matmul_source(g, mm.inputs.at(1), &p.trans_b);
  p.out = G.nodes.back();
  p.dtype = mm.dtype;
  for (size_t i = 1; i < G.nodes.size(); ++i) {
    const ir::Node& n = g.node(G.nodes[i]);
    switch (matmul_epilogue_step(g, n, G.nodes[i - 1])) {
      case EpilogueStep::scale: {
        const int32_t c = n.inputs[0] == G.nodes[i - 1] ? n.inputs[1] : n.inputs[0];
        // The constant as the interpreter sees it: rounded to its dtype.
        const double v = round_to_dtype(g.node(c).scalar, g.node(c).dtype);
        p.alpha = n.op == ir::Op::div ? 1.0 / v : v;
        break;
      }
      case EpilogueStep::bias:
        p.bias = n.inputs[0] == G.nodes[i - 1] ? n.inputs[1] : n.inputs[0];
        break;
      case EpilogueStep::relu:
        p.relu = true;
        break;
      case EpilogueStep::none:
        throw std::logic_error("kiln codegen: node " + std::to_string(G.nodes[i]) +
                               " is no matmul epilogue step");
    }
  }
  // The operands as the matmul sees them (after any transpose folded in).
  const ir::Shape a = bind_shape(g.node(mm.inputs[0]).shape, static_values);
  const ir::Shape b = bind_shape(g.node(mm.inputs[1]).shape, static_values);
  const ir::Shape out = bind_shape(mm.shape, static_values);
  p.m = SizeExpr::of_dim(out[out.size() - 2]);
  p.n = SizeExpr::of_dim(out.back());
  p.k = SizeExpr::of_dim(a.back());
  p.lda = p.trans_a ? p.m : p.k;
  p.ldb = p.trans_b ? p.k : p.n;
  p.batch = SizeExpr::product(out, 0, out.size() - 2);
  const SizeExpr zero = SizeExpr::constant(0);
  auto stride = [&](const ir::Shape& operand, const SizeExpr& matrix) -> SizeExpr {
    switch (ir::matmul_batch(operand, out)) {
      case ir::MatmulBatch::none:
        return SizeExpr::constant(0);
      case ir::MatmulBatch::full:
        return matrix;
      case ir::MatmulBatch::partial:
        break;
    }
    throw std::logic_error("kiln codegen: matmul operand batch dims broadcast partially");
  };
  p.stride_a = stride(a, p.m * p.k);
  p.stride_b = stride(b, p.k * p.n);
  // One B for every batch and A's matrices back to back: a single taller GEMM.
  if (p.stride_b == zero && !p.trans_a && !(p.stride_a == zero)) {
    p.m = p.m * p.batch;
    p.batch = SizeExpr::constant(1);
    p.stride_a = zero;
  }
  return p;
}

}  // namespace kiln::compiler
