#include "gemm_algo_cache.h"

namespace kiln::detail {
namespace {

// splitmix64's finalizer: every input bit moves every output bit, so keys
// that differ in one small field land in different buckets.
uint64_t mix(uint64_t h, uint64_t v) noexcept {
  uint64_t x = h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

uint8_t alignment_log2(const void* pointer) noexcept {
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  if (address == 0) return 8;
  const int zeros = __builtin_ctzll(address);
  return static_cast<uint8_t>(zeros < 8 ? zeros : 8);
}

GemmAlgoKey gemm_algo_key(int ordinal, const GemmProblem& p,
                          const GemmOperands& operands) noexcept {
  GemmAlgoKey key;
  key.m = p.m;
  key.n = p.n;
  key.k = p.k;
  key.batch = p.batch;
  key.lda = p.lda;
  key.ldb = p.ldb;
  key.stride_a = p.stride_a;
  key.stride_b = p.stride_b;
  key.workspace_bytes = operands.workspace_bytes;
  key.ordinal = ordinal;
  key.a_dtype = static_cast<uint8_t>(p.a_dtype);
  key.b_dtype = static_cast<uint8_t>(p.b_dtype);
  key.d_dtype = static_cast<uint8_t>(p.d_dtype);
  key.epilogue = static_cast<uint8_t>(p.epilogue);
  key.trans_a = p.trans_a;
  key.trans_b = p.trans_b;
  key.align_a = alignment_log2(operands.a.data);
  key.align_b = alignment_log2(operands.b.data);
  key.align_d = alignment_log2(operands.d.data);
  key.align_bias = gemm_has_bias(p.epilogue) ? alignment_log2(operands.bias.data) : 8;
  return key;
}

size_t GemmAlgoKeyHash::operator()(const GemmAlgoKey& key) const noexcept {
  uint64_t h = 0;
  for (int64_t v : {key.m, key.n, key.k, key.batch, key.lda, key.ldb, key.stride_a, key.stride_b}) {
    h = mix(h, static_cast<uint64_t>(v));
  }
  h = mix(h, key.workspace_bytes);
  h = mix(h, static_cast<uint32_t>(key.ordinal));
  // The small fields, packed.
  uint64_t small = 0;
  for (uint8_t v : {key.a_dtype, key.b_dtype, key.d_dtype, key.epilogue,
                    static_cast<uint8_t>(key.trans_a), static_cast<uint8_t>(key.trans_b)}) {
    small = small << 8 | v;
  }
  h = mix(h, small);
  h = mix(h, static_cast<uint64_t>(key.align_a) | static_cast<uint64_t>(key.align_b) << 8 |
                 static_cast<uint64_t>(key.align_d) << 16 |
                 static_cast<uint64_t>(key.align_bias) << 24);
  return static_cast<size_t>(h);
}

}  // namespace kiln::detail
