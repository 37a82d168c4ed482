// Internal to the codegen: a matmul group (FusedGroup::matmul_of) as one
// row-major batched GEMM with its epilogue, the form both the CPU kernel and
// the CUDA library call (kiln.fb.GemmCall) take:
//   D[i] (m x n) = relu?(alpha * op(A[i]) op(B[i]) + bias), i < batch
#pragma once

#include <cstdint>

#include "kiln/compiler/ir.h"
#include "kiln/compiler/schedule.h"
#include "kiln/compiler/size_expr.h"

namespace kiln::compiler {

struct MatmulPlan {
  int32_t matmul = -1;
  int32_t a = -1;        // the node whose buffer holds A
  int32_t b = -1;        // the node whose buffer holds B
  int32_t out = -1;      // the group's last node: what D holds
  int32_t bias = -1;     // the bias node (n elements), or -1
  bool trans_a = false;  // A stored k x m (a transpose folded into the call)
  bool trans_b = false;  // B stored n x k
  bool relu = false;
  double alpha = 1.0;
  DType dtype = DType::f32;  // of A, B and D
  SizeExpr m, n, k;
  SizeExpr batch;
  SizeExpr lda, ldb;            // elements between rows of A and of B, as stored
  SizeExpr stride_a, stride_b;  // elements between matrices; 0 when broadcast
};

// Throws std::logic_error for a group that is not a matmul group, or whose
// batch dims broadcast partially (the graph API's matmul rejects those).
// When B is shared by every batch and A is dense, the batch folds into m.
MatmulPlan plan_matmul(const ir::Graph& g, const Schedule& s, int32_t gi,
                       const ir::SymbolValues& static_values);

}  // namespace kiln::compiler
