// The device's gelu for values that reach memory rounded to f16 or bf16
// (GroupEmitter::rounded_to_16_bits): its coefficients, the CUDA text made
// from them, and the same formula in host arithmetic, which the unit tests
// hold against erf in CI.
//
// gelu(x) = x Phi(x) = x / (1 + 2^E(x)), E(x) = log2((1 - Phi(x)) / Phi(x)).
// E is odd, so E(x) = x Q(|x|). Q is a degree-9 polynomial in
// s = |x|/3 - 1, a weighted least-squares fit (Lawson's iteration towards
// minimax, mpmath at 40 digits) of E on [0, 6] minimizing |E - x Q|; |x| is
// clamped at 6 inside Q, beyond which the result is x, or decays to -0, as
// gelu does. Relative error at most 1.8e-5 on [-6, 6], measured on an H100
// with its approximate ex2 and rcp (2 ulp each), tails included: a quarter
// of an f16 ulp, a 200th of a bf16 one.
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

namespace kiln::compiler::codegen_detail {

// gelu(x) = x / (1 + 2^(x * Q(|x|))), Q(a) = sum_k kGeluNarrowQ[k] s^k with
// s = min(a, kGeluNarrowClamp) / 3 - 1.
inline constexpr float kGeluNarrowClamp = 6.0f;
inline constexpr float kGeluNarrowQ[10] = {
    -3.176987565e+00f, -1.565919210e+00f, -4.171089021e-01f, 2.717289888e-01f,
    -1.032287974e-01f, -4.686799994e-02f, 7.929762745e-02f,  -1.194378500e-02f,
    -2.646021928e-02f, 1.134717601e-02f};

inline float gelu_narrow_exponent(float x) {
  const float s = std::fmin(std::fabs(x), kGeluNarrowClamp) * (1.0f / 3.0f) - 1.0f;
  float q = kGeluNarrowQ[9];
  for (int k = 8; k >= 0; --k) q = std::fma(q, s, kGeluNarrowQ[k]);
  return x * q;
}

// Host arithmetic: exp2f and an IEEE division where the device uses its 2-ulp
// ex2 and rcp.
inline float gelu_narrow_host(float x) { return x / (1.0f + std::exp2(gelu_narrow_exponent(x))); }

inline std::string gelu_narrow_device_text() {
  std::string s =
      "static __device__ __forceinline__ float kiln_gelu_narrow_f32(float x) {\n"
      "  const float s = fminf(fabsf(x), 6.0f) * (1.0f / 3.0f) - 1.0f;\n";
  char buf[96];
  std::snprintf(buf, sizeof buf, "  float q = %.9ef;\n", static_cast<double>(kGeluNarrowQ[9]));
  s += buf;
  for (int k = 8; k >= 0; --k) {
    std::snprintf(buf, sizeof buf, "  q = q * s + %.9ef;\n", static_cast<double>(kGeluNarrowQ[k]));
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
