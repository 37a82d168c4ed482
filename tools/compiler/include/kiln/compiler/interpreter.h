// The reference interpreter: evaluates the IR in double precision. It is the
// oracle every generated kernel is checked against.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "kiln/compiler/dtype_rounding.h"  // round_to_dtype: the rounding after each op
#include "kiln/compiler/ir.h"

namespace kiln::compiler {

// A dense row-major host tensor; values held as double whatever the dtype,
// already rounded to the dtype (f32, f16, bf16 rounding to nearest even).
struct HostTensor {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::vector<double> values;

  int64_t numel() const;
  // Encodes to the dtype's bytes (bf16/f16 as 16-bit patterns) and back.
  std::vector<uint8_t> to_bytes() const;
  static HostTensor from_bytes(DType dtype, std::vector<int64_t> shape, const void* data);
};

// Random non-zero values: floats uniform in +-[0.05, 2), ints in [1, 9], bools mixed.
HostTensor random_tensor(DType dtype, std::vector<int64_t> shape, std::mt19937_64& rng);

// Binds symbols from the inputs' shapes (checking equality across uses and
// the declared ranges: a mismatch throws std::invalid_argument), then
// evaluates. Returns the outputs in graph order.
std::vector<HostTensor> interpret(const ir::Graph& g, const std::vector<HostTensor>& inputs);
ir::SymbolValues bind_symbols(const ir::Graph& g, const std::vector<HostTensor>& inputs);

// Largest |a-b| / (atol + rtol*|b|) over all elements; <= 1 means within
// tolerance. Tolerances by dtype: tolerance_for(dtype).
struct Tolerance {
  double atol;
  double rtol;
};
Tolerance tolerance_for(DType dtype);
double max_abs_error(const HostTensor& got, const HostTensor& want);
bool all_close(const HostTensor& got, const HostTensor& want, Tolerance tol,
               double* worst_ratio = nullptr);

}  // namespace kiln::compiler
