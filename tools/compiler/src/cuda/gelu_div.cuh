// cuda/gelu_div.cuh: the gelu's one division (kHelperGeluText) on the
// device: 2 ulp (GroupEmitter's device_math).
// Embedded into the CUDA codegen (cmake/KilnEmbedText.cmake): the text after
// this first paragraph goes into a kernel verbatim. The build compiles it
// (tools/compiler/src/cuda/check_device_text.cu).
// clang-format off

static __device__ __forceinline__ float kiln_gelu_div(float p, float q) {
  return __fdividef(p, q);
}
