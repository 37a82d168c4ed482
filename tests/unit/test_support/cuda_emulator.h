// Just enough CUDA, emulated on the CPU with one std::thread per CUDA thread,
// to run generated kernels in a test without a GPU: threadIdx/blockIdx,
// __syncthreads (a barrier of the block), __shfl_down_sync/__shfl_xor_sync
// (an exchange within each warp of 32), static __shared__ arrays, and the
// bit-cast intrinsics. Blocks run one after another; inline PTX (the 16-bit
// conversions) is not emulated, so only f32, f64 and integer kernels run.
// Compiled into a shared object together with the kernels' sources by
// test_cuda_emulated.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

struct KilnEmuDim {
  unsigned x = 1, y = 1, z = 1;
};
inline thread_local KilnEmuDim threadIdx, blockIdx;
inline KilnEmuDim blockDim, gridDim;
inline std::barrier<>* kiln_emu_block_barrier = nullptr;
inline std::barrier<>* kiln_emu_warp_barrier[32];
inline unsigned char kiln_emu_exchange[32][32][8];

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static

inline void __syncthreads() { kiln_emu_block_barrier->arrive_and_wait(); }

template <class T>
T kiln_emu_shuffle(T v, unsigned source_lane) {
  const unsigned lane = threadIdx.x % 32;
  const unsigned w = threadIdx.x / 32;
  std::memcpy(kiln_emu_exchange[w][lane], &v, sizeof v);
  kiln_emu_warp_barrier[w]->arrive_and_wait();
  T r = v;
  if (source_lane < 32) std::memcpy(&r, kiln_emu_exchange[w][source_lane], sizeof r);
  kiln_emu_warp_barrier[w]->arrive_and_wait();
  return r;
}
template <class T>
T __shfl_down_sync(unsigned, T v, int d) {
  return kiln_emu_shuffle(v, threadIdx.x % 32 + static_cast<unsigned>(d));
}
template <class T>
T __shfl_xor_sync(unsigned, T v, int d) {
  return kiln_emu_shuffle(v, (threadIdx.x % 32) ^ static_cast<unsigned>(d));
}
inline float __uint_as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t __float_as_uint(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __fdividef(float a, float b) { return a / b; }

// Runs `kernel` over a grid of gx * gy blocks of bx threads (bx a multiple of 32).
inline void kiln_emu_launch(int64_t gx, int64_t gy, unsigned bx,
                            const std::function<void()>& kernel) {
  blockDim.x = bx;
  gridDim.x = static_cast<unsigned>(gx);
  gridDim.y = static_cast<unsigned>(gy);
  std::barrier<> block(bx);
  kiln_emu_block_barrier = &block;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  for (unsigned w = 0; w < bx / 32; ++w) {
    warps.push_back(std::make_unique<std::barrier<>>(32));
    kiln_emu_warp_barrier[w] = warps.back().get();
  }
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < bx; ++t) {
    threads.emplace_back([&, t] {
      threadIdx.x = t;
      for (int64_t y = 0; y < gy; ++y) {
        for (int64_t x = 0; x < gx; ++x) {
          blockIdx.x = static_cast<unsigned>(x);
          blockIdx.y = static_cast<unsigned>(y);
          kernel();
          block.arrive_and_wait();  // the block's static shared memory is reused by the next
        }
      }
    });
  }
  for (auto& t : threads) t.join();
}
