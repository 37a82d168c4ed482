// cuda/bits.cuh: float <-> uint32_t bit casts on the device (the CPU's
// kHelperBitsText, as CUDA intrinsics).
// Embedded into the CUDA codegen (cmake/KilnEmbedText.cmake): the text after
// this first paragraph goes into a kernel verbatim. The build compiles it
// (tools/compiler/src/cuda/check_device_text.cu).
// clang-format off

static __device__ __forceinline__ float kiln_bits_f32(uint32_t u) { return __uint_as_float(u); }
static __device__ __forceinline__ uint32_t kiln_f32_bits(float f) { return __float_as_uint(f); }
