// A GemmCall of a launch plan, copied out of the manifest once: its sizes as
// SizePrograms over the graph's symbols, evaluated per call into the
// GemmProblem that CudaKernelLauncher::run_gemm runs.
#pragma once

#include <cstdint>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/gemm.h"
#include "size_expr.h"

namespace kiln::detail {

class GemmProgram {
 public:
  // `call` must have passed validate_library_call(): every size present and
  // reading only the graph's symbols.
  explicit GemmProgram(const fb::GemmCall& call);

  // Throws Error(invalid_argument) when a size overflows or divides by zero.
  GemmProblem evaluate(const int64_t* symbols) const;

 private:
  GemmProblem fixed_;  // dtypes, transposes, alpha and epilogue; sizes come per call
  SizeProgram m_;
  SizeProgram n_;
  SizeProgram k_;
  SizeProgram batch_;
  SizeProgram lda_;
  SizeProgram ldb_;
  SizeProgram stride_a_;
  SizeProgram stride_b_;
};

}  // namespace kiln::detail
