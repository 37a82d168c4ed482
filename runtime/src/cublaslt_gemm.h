// A gemm run through cuBLASLt: one device's handle, its algorithm cache,
// and the row-major gemm run as cuBLASLt's column-major one. A row-major
// m x n D is a column-major n x m D^T = op(B)^T op(A)^T, so cuBLASLt's first
// operand is B's memory and its second A's, with m and n swapped and no copy.
// CudaLauncher's gemm launches (run_gemm, for the package's plans and the
// JIT's) are in cublaslt_gemm.cpp too.
//
// cuBLASLt's algorithm choice is made once per problem: the heuristic costs
// tens of microseconds, as much as a small gemm, so each device keeps what
// it chose, keyed by everything the choice depends on.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <unordered_map>

#include "cublaslt_library.h"
#include "kiln/gemm.h"
#include "kiln/runtime_internal/gemm_plan.h"

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

// cuBLAS's advice for the workspace: 32 MiB on Hopper (sm_90) and newer,
// 4 MiB before.
size_t cublaslt_workspace_bytes(int compute_capability) noexcept;

// A gemm's descriptors in storage of its own (cuBLASLt's *Init calls, which
// allocate nothing and need no destroy), sized above what CUDA 13 asks
// (256 and 64 bytes): cuBLASLt refuses storage too small, never overruns it.
struct GemmDescriptors {
  uint64_t matmul[64];
  uint64_t first[16];   // cuBLASLt's A: B's memory
  uint64_t second[16];  // cuBLASLt's B: A's memory
  uint64_t d[16];       // C (beta is 0) and D
};

// Fills `out` for `p` with the bias at `bias` (when the epilogue has one):
// f32 compute and scale, transposes and layouts swapped as above, batch
// count and strides (D's m * n), the epilogue and the bias's dtype (D's).
// Throws Error(internal) naming the site when cuBLASLt refuses one.
void build_gemm_descriptors(const CublasLtLibrary& lt, const GemmProblem& p, const void* bias,
                            GemmDescriptors& out, const GemmSite& site);

class CublasLtGemm {
 public:
  // cublasLtCreate; the device's primary context must be current. Throws
  // Error(cuda_error) when cuBLASLt refuses.
  CublasLtGemm(const CublasLtLibrary& lt, int ordinal, const GemmSite& site);
  // cublasLtDestroy; the context must be current. Never throws.
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  // One cublasLtMatmul on `stream`, with the algorithm the cache holds for
  // this problem (the heuristic's first choice, asked once per key). The
  // problem must have passed check_gemm_operands() and have k > 0 and a
  // non-empty D. Throws Error(cuda_error) naming the site, the problem and
  // cuBLASLt's status when there is no algorithm or the gemm is refused.
  void run(const GemmProblem& p, const GemmOperands& operands, void* stream, const GemmSite& site);

  const GemmAlgoCache& algorithms() const noexcept { return algorithms_; }

 private:
  GemmAlgo choose(const GemmDescriptors& descriptors, const GemmAlgoKey& key, const GemmProblem& p,
                  const GemmSite& site) const;

  const CublasLtLibrary& lt_;
  int ordinal_;
  cublasLtHandle_t handle_ = nullptr;
  GemmAlgoCache algorithms_;
};

}  // namespace kiln::detail
