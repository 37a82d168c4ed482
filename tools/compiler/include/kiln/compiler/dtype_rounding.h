// How a value rounds to a dtype, one rule for every part of the compiler: the
// reference interpreter rounds after each op, and the codegens round a
// constant they fold into a kernel or a library call's epilogue, so the
// folded value is the one the interpreter computes with.
#pragma once

#include <cstdint>

#include "kiln/dtype.h"

namespace kiln::compiler {

// f32, f16 and bf16 round to nearest even (a NaN stays a NaN, f16 overflows
// to infinity); f64 is exact; i32 and i64 truncate toward zero and wrap (a NaN
// is 0); boolean is 0 or 1.
double round_to_dtype(double v, DType dtype);

// The 16-bit encodings, rounding as above.
uint16_t float_to_bf16_bits(float f);
float bf16_bits_to_float(uint16_t b);
uint16_t double_to_f16_bits(double d);
double f16_bits_to_double(uint16_t h);

}  // namespace kiln::compiler
