#include "gemm_program.h"

namespace kiln::detail {

static_assert(
    static_cast<int>(fb::GemmEpilogue::None) == static_cast<int>(GemmEpilogue::none) &&
        static_cast<int>(fb::GemmEpilogue::Bias) == static_cast<int>(GemmEpilogue::bias) &&
        static_cast<int>(fb::GemmEpilogue::Relu) == static_cast<int>(GemmEpilogue::relu) &&
        static_cast<int>(fb::GemmEpilogue::BiasRelu) == static_cast<int>(GemmEpilogue::bias_relu),
    "kiln::GemmEpilogue has kiln.fb.GemmEpilogue's values");

GemmProgram::GemmProgram(const fb::GemmCall& call)
    : m_(call.m(), 0),
      n_(call.n(), 0),
      k_(call.k(), 0),
      batch_(call.batch(), 1),
      lda_(call.lda(), 0),
      ldb_(call.ldb(), 0),
      stride_a_(call.stride_a(), 0),
      stride_b_(call.stride_b(), 0) {
  // DType and GemmEpilogue have the schema's values (a cast).
  fixed_.a_dtype = static_cast<DType>(call.a_dtype());
  fixed_.b_dtype = static_cast<DType>(call.b_dtype());
  fixed_.d_dtype = static_cast<DType>(call.d_dtype());
  fixed_.trans_a = call.trans_a();
  fixed_.trans_b = call.trans_b();
  fixed_.alpha = call.alpha();
  fixed_.epilogue = static_cast<GemmEpilogue>(call.epilogue());
}

GemmProblem GemmProgram::evaluate(const int64_t* symbols) const {
  GemmProblem p = fixed_;
  p.m = m_.evaluate(symbols, "gemm m");
  p.n = n_.evaluate(symbols, "gemm n");
  p.k = k_.evaluate(symbols, "gemm k");
  p.batch = batch_.evaluate(symbols, "gemm batch");
  p.lda = lda_.evaluate(symbols, "gemm lda");
  p.ldb = ldb_.evaluate(symbols, "gemm ldb");
  p.stride_a = stride_a_.evaluate(symbols, "gemm stride_a");
  p.stride_b = stride_b_.evaluate(symbols, "gemm stride_b");
  return p;
}

}  // namespace kiln::detail
