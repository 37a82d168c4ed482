#include "kiln/compiler/dtype_rounding.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace kiln::compiler {
namespace {

double wrap_int(double v, int bits) {
  if (std::isnan(v)) return 0;
  const double t = std::trunc(v);
  if (bits == 64) {
    if (t >= 9.2e18 || t <= -9.2e18) return t;  // unrepresentable either way; keep magnitude
    return static_cast<double>(static_cast<int64_t>(t));
  }
  const auto i = static_cast<int64_t>(std::fmod(t, 4294967296.0));
  return static_cast<double>(static_cast<int32_t>(static_cast<uint32_t>(i)));
}

}  // namespace

uint16_t float_to_bf16_bits(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f = 0;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t double_to_f16_bits(double d) {
  const uint16_t sign = std::signbit(d) ? 0x8000 : 0;
  if (std::isnan(d)) return 0x7e00;
  double a = std::fabs(d);
  if (a >= 65520.0) return sign | 0x7c00;  // rounds to infinity
  if (a < std::ldexp(1.0, -24) * 0.5) return sign;
  int e = 0;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  int exp = e - 1;    // a = 1.f * 2^exp
  if (exp < -14) {
    // subnormal: units of 2^-24
    const double units = std::nearbyint(a * std::ldexp(1.0, 24));  // ties to even (default mode)
    return sign | static_cast<uint16_t>(units);
  }
  double mant = std::nearbyint((a / std::ldexp(1.0, exp) - 1.0) * 1024.0);
  if (mant >= 1024) {
    mant = 0;
    ++exp;
  }
  if (exp > 15) return sign | 0x7c00;
  return sign | static_cast<uint16_t>(((exp + 15) << 10) | static_cast<int>(mant));
}

double f16_bits_to_double(uint16_t h) {
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  if (exp == 31) return mant ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  return sign * std::ldexp(1024 + mant, exp - 25);
}

double round_to_dtype(double v, DType dtype) {
  switch (dtype) {
    case DType::f64:
      return v;
    case DType::f32:
      return static_cast<double>(static_cast<float>(v));
    case DType::bf16:
      return bf16_bits_to_float(float_to_bf16_bits(static_cast<float>(v)));
    case DType::f16:
      return f16_bits_to_double(double_to_f16_bits(v));
    case DType::i32:
      return wrap_int(v, 32);
    case DType::i64:
      return wrap_int(v, 64);
    case DType::boolean:
      return v != 0 ? 1.0 : 0.0;
  }
  return v;
}

}  // namespace kiln::compiler
