// cuda/bf16.cuh: bf16 loads and stores on the device, one cvt instruction
// each (sm_80 or newer), round to nearest even like the CPU helpers; only a
// NaN's payload may differ.
// Embedded into the CUDA codegen (cmake/KilnEmbedText.cmake): the text after
// this first paragraph goes into a kernel verbatim. The build compiles it
// (tools/compiler/src/cuda/check_device_text.cu).
// clang-format off

static __device__ __forceinline__ float kiln_bf16_to_f32(uint16_t h) {
  return __uint_as_float((uint32_t)h << 16);
}
static __device__ __forceinline__ uint16_t kiln_f32_to_bf16(float f) {
  uint16_t r;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(f));
  return r;
}
static __device__ __forceinline__ float kiln_round_bf16(float f) {
  return kiln_bf16_to_f32(kiln_f32_to_bf16(f));
}
