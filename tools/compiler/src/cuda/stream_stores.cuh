// cuda/stream_stores.cuh: streaming (.cs) vector stores of a column
// kernel, whose outputs it never rereads.
// Embedded into the CUDA codegen (cmake/KilnEmbedText.cmake): the text after
// this first paragraph goes into a kernel verbatim. The build compiles it
// (tools/compiler/src/cuda/check_device_text.cu).
// clang-format off

template <int N, typename T>
static __device__ __forceinline__ void kiln_vstore_stream(T* __restrict__ p, const T* __restrict__ v) {
#pragma unroll
  for (int i = 0; i < (int)(sizeof(T) * N / 16); ++i) {
    uint4 u;
    memcpy(&u, reinterpret_cast<const char*>(v) + 16 * i, 16);
    __stcs(reinterpret_cast<uint4*>(p) + i, u);
  }
}
