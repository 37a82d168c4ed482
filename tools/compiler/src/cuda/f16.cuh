// cuda/f16.cuh: f16 loads and stores on the device, one cvt instruction
// each, round to nearest even like the CPU helpers; only a NaN's payload may
// differ.
// Embedded into the CUDA codegen (cmake/KilnEmbedText.cmake): the text after
// this first paragraph goes into a kernel verbatim. The build compiles it
// (tools/compiler/src/cuda/check_device_text.cu).
// clang-format off

static __device__ __forceinline__ float kiln_f16_to_f32(uint16_t h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}
static __device__ __forceinline__ uint16_t kiln_f32_to_f16(float f) {
  uint16_t r;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r) : "f"(f));
  return r;
}
static __device__ __forceinline__ float kiln_round_f16(float f) {
  return kiln_f16_to_f32(kiln_f32_to_f16(f));
}
