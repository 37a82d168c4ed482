// Float dtypes' rounding units, for tests that bound a kernel's error
// (random_graph.cpp's error model, test_composites.cpp's formulas).
#pragma once

#include "kiln/dtype.h"

namespace kiln_test {

inline bool is_16bit(kiln::DType t) { return t == kiln::DType::f16 || t == kiln::DType::bf16; }

// Unit roundoff (half an ulp at 1) of a float dtype; 0 for the others.
inline double unit_roundoff(kiln::DType t) {
  switch (t) {
    case kiln::DType::f64:
      return 0x1p-53;
    case kiln::DType::f32:
      return 0x1p-24;
    case kiln::DType::f16:
      return 0x1p-11;
    case kiln::DType::bf16:
      return 0x1p-8;
    default:
      return 0;
  }
}

}  // namespace kiln_test
