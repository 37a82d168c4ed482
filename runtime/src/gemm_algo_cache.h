// cuBLASLt's algorithm choice, made once per problem: the heuristic costs
// tens of microseconds, as much as a small gemm, so each device keeps what
// it chose, keyed by everything the choice depends on.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "kiln/gemm.h"

namespace kiln::detail {

// Everything that can change the algorithm cuBLASLt picks: the device, the
// problem but alpha (a host scalar the kernel takes at launch), the
// workspace it may use, and how each pointer is aligned (an algorithm that
// loads 16 bytes at a time needs 16-byte aligned operands).
struct GemmAlgoKey {
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  int64_t batch = 0;
  int64_t lda = 0;
  int64_t ldb = 0;
  int64_t stride_a = 0;
  int64_t stride_b = 0;
  uint64_t workspace_bytes = 0;
  int32_t ordinal = 0;
  uint8_t a_dtype = 0;
  uint8_t b_dtype = 0;
  uint8_t d_dtype = 0;
  uint8_t epilogue = 0;
  bool trans_a = false;
  bool trans_b = false;
  // log2 of each pointer's alignment in bytes, at most 8 (256 bytes, what
  // cuBLASLt asks for by default); the bias's is 8 without a bias.
  uint8_t align_a = 0;
  uint8_t align_b = 0;
  uint8_t align_d = 0;
  uint8_t align_bias = 0;

  bool operator==(const GemmAlgoKey&) const = default;
};

// log2 of the largest power of two, up to 256, that divides `pointer`;
// 8 for NULL.
uint8_t alignment_log2(const void* pointer) noexcept;

GemmAlgoKey gemm_algo_key(int ordinal, const GemmProblem& p, const GemmOperands& operands) noexcept;

struct GemmAlgoKeyHash {
  size_t operator()(const GemmAlgoKey& key) const noexcept;
};

// What the heuristic chose: a cublasLtMatmulAlgo_t (opaque, 64 bytes) and
// the workspace it needs.
struct GemmAlgo {
  std::array<uint64_t, 8> algo{};
  size_t workspace_bytes = 0;
};

// Thread-safe. A hit takes a shared lock; a miss runs `choose` under the
// exclusive lock, so each key's heuristic runs once however many threads
// miss it together. A choice that throws is not kept. When the cache holds
// kCapacity keys (a service with that many distinct gemm shapes on one
// device) it is emptied before the next one is added, so it stays bounded.
class GemmAlgoCache {
 public:
  static constexpr size_t kCapacity = 4096;

  template <class Choose>
  GemmAlgo get(const GemmAlgoKey& key, Choose&& choose) {
    {
      std::shared_lock lock(mutex_);
      if (auto it = algos_.find(key); it != algos_.end()) {
        hits_.fetch_add(1, std::memory_order_relaxed);
        return it->second;
      }
    }
    std::unique_lock lock(mutex_);
    if (auto it = algos_.find(key); it != algos_.end()) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return it->second;
    }
    const GemmAlgo chosen = choose();
    if (algos_.size() >= kCapacity) algos_.clear();
    algos_.emplace(key, chosen);
    misses_.fetch_add(1, std::memory_order_relaxed);
    return chosen;
  }

  uint64_t hits() const noexcept { return hits_.load(std::memory_order_relaxed); }
  // Heuristic runs that succeeded: the keys added.
  uint64_t misses() const noexcept { return misses_.load(std::memory_order_relaxed); }
  size_t size() const {
    std::shared_lock lock(mutex_);
    return algos_.size();
  }

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<GemmAlgoKey, GemmAlgo, GemmAlgoKeyHash> algos_;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
};

}  // namespace kiln::detail
