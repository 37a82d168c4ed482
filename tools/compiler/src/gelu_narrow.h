// The device's gelu for values that reach memory rounded to f16 or bf16
// (GroupEmitter::rounded_to_16_bits): its coefficients, the CUDA text made
// from them, and the same formula in host arithmetic, which the unit tests
// hold against erf in CI.
//
// gelu(x) = x Phi(x) = x / (1 + 2^E(x)), E(x) = log2((1 - Phi(x)) / Phi(x)).
// E is odd, so E(x) = x Q(|x|). Q is a polynomial, a weighted least-squares
// fit (Lawson's iteration towards minimax, mpmath at 40 digits) of E on
// [0, 6] minimizing |E - x Q|; |x| is clamped at 6 inside Q, beyond which the
// result is x, or decays to -0, as gelu does. Two fits, by the 16-bit type
// the value is rounded to, relative error on [-6, 6] measured on an H200
// with its approximate ex2 and rcp (2 ulp each), tails included:
//  - f16: degree 9 in s = |x|/3 - 1, at most 1.8e-5 (a quarter of an f16 ulp);
//  - bf16: degree 6 in |x|, at most 2.3e-4 (a seventeenth of a bf16 ulp),
//    three FMAs and a multiply fewer, which took gelu(x*a+b) in bf16 on an
//    H200 from XX% to YY% of the copy ceiling.
//
// Why not the rational erf of kHelperGeluText, as in f32: that one is within
// 1e-7 for x > 0 but loses relative accuracy in the negative tail, where
// 1 + erf cancels (off by several times itself near x = -5, inside the
// absolute tolerance; in bf16 0.5% of outputs came out more than one ulp
// off), and it issues 23 instructions per element where this one issues 20
// (sm_90 SASS of gelu(x*a+b) in bf16). That kernel is bound by issue, not
// memory: 91.3% -> 95.1% of the copy ceiling on an H100 (2026-11-22).
// An f32 result keeps the rational: this fit's 1.8e-5 is far from f32's
// precision, and the f32 kernel is bound by memory anyway.
// Specials: inf -> inf, -inf -> nan (as the interpreter's 0.5 x (1 + erf)),
// nan -> nan.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

#include "kiln/dtype.h"

namespace kiln::compiler::codegen_detail {

// Q(a) = sum_k coefficients[k] s^k with s = min(a, 6) * scale + shift.
struct GeluNarrowFit {
  const char* function;  // the device helper's name
  float scale;
  float shift;
  int degree;
  float coefficients[10];
};

inline constexpr float kGeluNarrowClamp = 6.0f;

inline constexpr GeluNarrowFit kGeluF16Fit = {
    "kiln_gelu_f16_f32", 1.0f / 3.0f, -1.0f, 9,
    {-3.176987565e+00f, -1.565919210e+00f, -4.171089021e-01f, 2.717289888e-01f,
     -1.032287974e-01f, -4.686799994e-02f, 7.929762745e-02f, -1.194378500e-02f,
     -2.646021928e-02f, 1.134717601e-02f}};

inline constexpr GeluNarrowFit kGeluBf16Fit = {
    "kiln_gelu_bf16_f32", 1.0f, 0.0f, 6,
    {-2.302380694e+00f, -6.827541074e-03f, -8.540278225e-02f, -1.881843897e-02f,
     7.768779243e-03f, -9.837985646e-04f, 4.454356259e-05f}};

// The fit for a value rounded to `t` (f16 or bf16).
inline const GeluNarrowFit& gelu_narrow_fit(DType t) {
  return t == DType::bf16 ? kGeluBf16Fit : kGeluF16Fit;
}

inline float gelu_narrow_exponent(const GeluNarrowFit& fit, float x) {
  const float a = std::fmin(std::fabs(x), kGeluNarrowClamp);
  const float s = fit.scale == 1.0f && fit.shift == 0.0f ? a : a * fit.scale + fit.shift;
  float q = fit.coefficients[fit.degree];
  for (int k = fit.degree - 1; k >= 0; --k) q = std::fma(q, s, fit.coefficients[k]);
  return x * q;
}

// Host arithmetic: exp2f and an IEEE division where the device uses its 2-ulp
// ex2 and rcp.
inline float gelu_narrow_host(const GeluNarrowFit& fit, float x) {
  return x / (1.0f + std::exp2(gelu_narrow_exponent(fit, x)));
}

inline std::string gelu_narrow_device_text(const GeluNarrowFit& fit) {
  char buf[128];
  std::string s = std::string("static __device__ __forceinline__ float ") + fit.function +
                  "(float x) {\n";
  if (fit.scale == 1.0f && fit.shift == 0.0f) {
    s += "  const float s = fminf(fabsf(x), 6.0f);\n";
  } else {
    std::snprintf(buf, sizeof buf, "  const float s = fminf(fabsf(x), 6.0f) * %.9ef + %.9ef;\n",
                  static_cast<double>(fit.scale), static_cast<double>(fit.shift));
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "  float q = %.9ef;\n",
                static_cast<double>(fit.coefficients[fit.degree]));
  s += buf;
  for (int k = fit.degree - 1; k >= 0; --k) {
    std::snprintf(buf, sizeof buf, "  q = q * s + %.9ef;\n",
                  static_cast<double>(fit.coefficients[k]));
    s += buf;
  }
  s +=
      "  float e, r;\n"
      "  asm(\"ex2.approx.ftz.f32 %0, %1;\" : \"=f\"(e) : \"f\"(x * q));\n"
      "  asm(\"rcp.approx.ftz.f32 %0, %1;\" : \"=f\"(r) : \"f\"(1.0f + e));\n"
      "  return x * r;\n"
      "}\n";
  return s;
}

}  // namespace kiln::compiler::codegen_detail
