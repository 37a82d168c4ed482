// Internal to the C++ codegen: text fragments shared by the emitter.
#pragma once

#include <string_view>

namespace kiln::compiler::cpu_detail {

// The KilnCpuKernelArgs struct of schemas/include/kiln/abi/cpu_kernel.h,
// verbatim (a test compares the two).
inline constexpr std::string_view kAbiStruct =
    "typedef struct KilnCpuKernelArgs {\n"
    "  /* Base pointers, in KernelLaunch.buffers order, already offset by the\n"
    "   * DLTensor's byte_offset. */\n"
    "  void* const* buffers;\n"
    "  /* One value per graph symbol, bound by the guards. */\n"
    "  const int64_t* symbols;\n"
    "} KilnCpuKernelArgs;";

// Helper functions a kernel may need, emitted in this order when used.
enum Helper : unsigned {
  kHelperBits = 1u << 0,    // float <-> uint32_t bit casts
  kHelperBf16 = 1u << 1,    // bf16 load/store (round to nearest even)
  kHelperF16 = 1u << 2,     // f16 load/store (round to nearest even, subnormals, inf, nan)
  kHelperTanh = 1u << 3,    // vectorizable tanhf
  kHelperGelu = 1u << 4,    // vectorizable gelu (rational erf, no exp)
  kHelperIntDiv = 1u << 5,  // int64 division without UB
  kHelperIntPow = 1u << 6,  // int64 pow through double
  // gelu whose result is rounded to f16 or bf16, on the device (gelu_narrow.h)
  kHelperGeluF16 = 1u << 7,
  kHelperGeluBf16 = 1u << 8,
};

// The helpers both dialects emit (tanh, gelu, integer division and pow) are
// written without their specifiers: each dialect puts its own in front, these
// on the CPU, inline device function ones on CUDA (cuda_codegen.cpp).
inline constexpr std::string_view kCpuHelperSpecifiers = "static inline ";

inline constexpr std::string_view kHelperBitsText =
    R"(static inline float kiln_bits_f32(uint32_t u) {
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
static inline uint32_t kiln_f32_bits(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  return u;
}
)";

inline constexpr std::string_view kHelperBf16Text =
    R"(static inline float kiln_bf16_to_f32(uint16_t h) { return kiln_bits_f32((uint32_t)h << 16); }
static inline uint16_t kiln_f32_to_bf16(float f) {
  const uint32_t u = kiln_f32_bits(f);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (u >> 16) | 0x40u;
  return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}
static inline float kiln_round_bf16(float f) { return kiln_bf16_to_f32(kiln_f32_to_bf16(f)); }
)";

// Branch-free (masks, not ?: chains, which clang turns into a switch that
// blocks vectorization).
inline constexpr std::string_view kHelperF16Text =
    R"(static inline float kiln_f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t em = (uint32_t)(h & 0x7fffu) << 13;
  const uint32_t e = em & 0x0f800000u;
  const uint32_t normal = em + 0x38000000u;
  const uint32_t inf_nan = em + 0x70000000u;
  const uint32_t sub = kiln_f32_bits(kiln_bits_f32(em + 0x38800000u) - kiln_bits_f32(0x38800000u));
  const uint32_t m_inf_nan = 0u - (uint32_t)(e == 0x0f800000u);
  const uint32_t m_sub = 0u - (uint32_t)(e == 0u);
  const uint32_t r = (normal & ~(m_inf_nan | m_sub)) | (inf_nan & m_inf_nan) | (sub & m_sub);
  return kiln_bits_f32(r | sign);
}
static inline uint16_t kiln_f32_to_f16(float f) {
  const uint32_t u = kiln_f32_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  const uint32_t inf_nan = 0x7c00u | ((uint32_t)(a > 0x7f800000u) << 9);
  const uint32_t sub = kiln_f32_bits(kiln_bits_f32(a) + 0.5f) - 0x3f000000u;
  const uint32_t normal = (a - 0x38000000u + 0xfffu + ((a >> 13) & 1u)) >> 13;
  const uint32_t m_big = 0u - (uint32_t)(a >= 0x47800000u);
  const uint32_t m_sub = 0u - (uint32_t)(a < 0x38800000u);
  const uint32_t r = (normal & ~(m_big | m_sub)) | (inf_nan & m_big) | (sub & m_sub);
  return (uint16_t)(r | sign);
}
static inline float kiln_round_f16(float f) { return kiln_f16_to_f32(kiln_f32_to_f16(f)); }
)";

// Cephes' tanhf: a polynomial below 0.625, 1 - 2/(exp(2|x|)+1) above; both
// vectorize (expf through libmvec).
inline constexpr std::string_view kHelperTanhText = R"(float kiln_tanhf(float x) {
  const float ax = fabsf(x);
  const float z = x * x;
  const float p = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
  const float big = copysignf(1.0f - 2.0f / (expf(2.0f * ax) + 1.0f), x);
  return ax < 0.625f ? p : big;
}
)";

// gelu(x) = 0.5 x (1 + erf(x/sqrt(2))), erf from Eigen's 9/12-degree
// rational interpolant (generic_fast_erf_float in Eigen, MPL-2.0; the
// coefficients below are derived from it: rescaled by 1/sqrt(2) and
// normalized to q(0) = 1), which is within 3 ulp of erf on
// [-c, c], c = erfinv(1 - 2^-23) = 3.8325), with the 1/sqrt(2) folded into
// the coefficients, so the argument is clamped at c*sqrt(2) = 5.41998 (erf is
// +-1 in f32 beyond; compares, not fminf/fmaxf, which add NaN handling).
// No exp and no call: only FMAs, the clamp and one division, which clang
// vectorizes (8-wide with AVX2). The approximation's absolute error is
// below 1e-6 everywhere (largest near the clamp, where 1 + erf cancels);
// evaluated in f32 it is within 2e-6 of the exact gelu (1.41e-6 at most
// over every f32 with |x| <= 64, near x = 5.2, where the result's own
// rounding adds), which test_codegen_cpu's GeluDenseSweep asserts; the f32
// tolerance is 1e-5 + 1e-4 |y|. inf -> inf, -inf -> nan (as the interpreter's
// 0.5 x (1 + erf)), nan -> nan.
// The gelu's one division, a function of its own so that each dialect says
// how to divide: exactly here, with the device's 2-ulp division on CUDA.
inline constexpr std::string_view kHelperGeluDivText =
    R"(static inline float kiln_gelu_div(float p, float q) { return p / q; }
)";

inline constexpr std::string_view kHelperGeluText = R"(float kiln_gelu_f32(float x) {
  const float hi = x < 5.41998291f ? x : 5.41998291f;
  const float xc = hi > -5.41998291f ? hi : -5.41998291f;
  const float x2 = xc * xc;
  const float p = xc * ((((1.012270462e-05f * x2 + 3.012532107e-04f) * x2 + 9.007779380e-03f) *
                  x2 + 6.548103035e-02f) * x2 + 7.978845441e-01f);
  const float q = (((((-1.842437962e-09f * x2 + 7.358739522e-07f) * x2 + 6.362265799e-05f) * x2 +
                  1.758808771e-03f) * x2 + 2.774626295e-02f) * x2 + 2.487346256e-01f) * x2 + 1.0f;
  const float h = 0.5f * x;
  return h + h * kiln_gelu_div(p, q);
}
)";

inline constexpr std::string_view kHelperIntDivText =
    R"(int64_t kiln_idiv(int64_t a, int64_t b) {
  return b == 0 ? 0 : (b == -1 ? (int64_t)(0ull - (uint64_t)a) : a / b);
}
)";

inline constexpr std::string_view kHelperIntPowText =
    R"(int64_t kiln_ipow(int64_t a, int64_t b) {
  return (int64_t)pow((double)a, (double)b);
}
)";

}  // namespace kiln::compiler::cpu_detail
