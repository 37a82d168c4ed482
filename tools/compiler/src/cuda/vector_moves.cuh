// cuda/vector_moves.cuh: 16-byte vector loads and stores of a pointwise or
// rows kernel's operands.
// Embedded into the CUDA codegen (cmake/KilnEmbedText.cmake): the text after
// this first paragraph goes into a kernel verbatim. The build compiles it
// (tools/compiler/src/cuda/check_device_text.cu).
// clang-format off

// 16-byte vector moves; `p` is 16-byte aligned (guarded) and N * sizeof(T) a
// multiple of 16.
template <int N, typename T>
static __device__ __forceinline__ void kiln_vload(const T* __restrict__ p, T* __restrict__ v) {
#pragma unroll
  for (int i = 0; i < (int)(sizeof(T) * N / 16); ++i) {
    const uint4 u = reinterpret_cast<const uint4*>(p)[i];
    memcpy(reinterpret_cast<char*>(v) + 16 * i, &u, 16);
  }
}
template <int N, typename T>
static __device__ __forceinline__ void kiln_vstore(T* __restrict__ p, const T* __restrict__ v) {
#pragma unroll
  for (int i = 0; i < (int)(sizeof(T) * N / 16); ++i) {
    uint4 u;
    memcpy(&u, reinterpret_cast<const char*>(v) + 16 * i, 16);
    reinterpret_cast<uint4*>(p)[i] = u;
  }
}
