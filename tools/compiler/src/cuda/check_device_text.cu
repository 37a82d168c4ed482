// Compiles the device text the CUDA codegen embeds (cuda/*.cuh) the way a
// kernel uses it: after the C headers (nvcc) or after nvrtc_prelude.cuh
// (NVRTC, KILN_CHECK_NVRTC_PRELUDE), every helper called and every template
// instantiated (the helpers do not depend on one another, so their order is
// free). The ctests compiler.cuda_device_text.* (tools/compiler/CMakeLists.txt)
// run it through nvcc.
#ifdef KILN_CHECK_NVRTC_PRELUDE
// nvcc's implicit cuda_runtime.h brought <math.h>'s; NVRTC has none.
#undef INFINITY
#undef NAN
#include "nvrtc_prelude.cuh"
#else
#include <math.h>
#include <stdint.h>
#include <string.h>
#endif

#include "bf16.cuh"
#include "bits.cuh"
#include "f16.cuh"
#include "gelu_div.cuh"
#include "row_loads.cuh"
#include "stream_stores.cuh"
#include "vector_moves.cuh"

extern "C" __global__ void kiln_check_device_text(const float* __restrict__ x,
                                                  float* __restrict__ y,
                                                  const uint16_t* __restrict__ h,
                                                  uint16_t* __restrict__ g) {
  alignas(16) float v[4];
  kiln_vload<4>(x, v);
  const uint64_t policy = kiln_evict_last_policy();
  alignas(16) float w[4];
  kiln_vload_rows<4>(x + 4, w, policy);
  alignas(16) uint16_t u[8];
  kiln_vload<8>(h, u);
  for (int i = 0; i < 4; ++i) {
    v[i] = kiln_gelu_div(v[i] + w[i], 3.0f) + kiln_bits_f32(kiln_f32_bits(v[i]));
    v[i] += kiln_round_bf16(kiln_bf16_to_f32(u[i])) + kiln_round_f16(kiln_f16_to_f32(u[4 + i]));
    u[i] = kiln_f32_to_bf16(v[i]);
    u[4 + i] = kiln_f32_to_f16(v[i]);
  }
  v[0] += (float)INT64_MAX + (float)INT64_MIN + (float)INT64_C(1) + INFINITY;
  v[1] = isnan(v[1]) ? NAN : v[1];
  kiln_vstore<4>(y, v);
  kiln_vstore_stream<8>(g, u);
}
