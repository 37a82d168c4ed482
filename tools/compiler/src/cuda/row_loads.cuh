// cuda/row_loads.cuh: a row kernel reads its rows with an L2 evict_last
// access policy (sm_80 and newer; older archs load plainly), as Triton does
// for a reduction's first reads, and stores plainly. Measured on an H200,
// rmsnorm f32 at 16384x4096 in 512-thread rows, calls alternating between
// two inputs so no call finds the last one's data in L2: plain loads 97.3%
// of the copy ceiling, evict_first loads with streaming stores 97.7%,
// evict_last loads 100.5% (cudaMemcpy is the 100%); lines written back while
// the rows stay resident make a steadier stream for DRAM.
// Embedded into the CUDA codegen (cmake/KilnEmbedText.cmake): the text after
// this first paragraph goes into a kernel verbatim. The build compiles it
// (tools/compiler/src/cuda/check_device_text.cu).
// clang-format off

static __device__ __forceinline__ uint64_t kiln_evict_last_policy() {
  uint64_t policy = 0;
#if __CUDA_ARCH__ >= 800
  asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(policy));
#endif
  return policy;
}
template <int N, typename T>
static __device__ __forceinline__ void kiln_vload_rows(const T* __restrict__ p, T* __restrict__ v,
                                                       uint64_t policy) {
#pragma unroll
  for (int i = 0; i < (int)(sizeof(T) * N / 16); ++i) {
    uint4 u;
#if __CUDA_ARCH__ >= 800
    asm volatile("ld.global.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
                 : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
                 : "l"(reinterpret_cast<const uint4*>(p) + i), "l"(policy));
#else
    (void)policy;
    u = reinterpret_cast<const uint4*>(p)[i];
#endif
    memcpy(reinterpret_cast<char*>(v) + 16 * i, &u, 16);
  }
}
