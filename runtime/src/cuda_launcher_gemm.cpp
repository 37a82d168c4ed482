// CudaLauncher's library calls: gemm launches through the device's cuBLASLt,
// for the package's plans and the JIT's.
#include <algorithm>

#include "cublaslt_gemm.h"
#include "cuda_launcher.h"
#include "kiln/error.h"
#include "text.h"

namespace kiln::detail {
namespace {

// Gives a scratch allocation back stream-ordered, also when the gemm throws.
class Scratch {
 public:
  Scratch(CudaLauncher& launcher, int ordinal, size_t bytes, void* stream)
      : launcher_(launcher), ordinal_(ordinal), bytes_(bytes), stream_(stream) {
    data_ = launcher.allocate(ordinal, bytes, stream);
  }
  ~Scratch() { launcher_.deallocate(ordinal_, data_, bytes_, stream_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void* data() const { return data_; }

 private:
  CudaLauncher& launcher_;
  int ordinal_;
  size_t bytes_;
  void* stream_;
  void* data_ = nullptr;
};

}  // namespace

size_t CudaLauncher::gemm_workspace_bytes(int ordinal) {
  return cublaslt_workspace_bytes(device(ordinal).compute_capability);
}

const CublasLtGemm* CudaLauncher::gemm_state(int ordinal) const noexcept {
  if (ordinal < 0 || ordinal >= kMaxCudaDevices) return nullptr;
  return gemms_[ordinal].load(std::memory_order_acquire);
}

CublasLtGemm& CudaLauncher::gemm(int ordinal, const GemmSite& site) {
  if (ordinal >= 0 && ordinal < kMaxCudaDevices) {
    if (CublasLtGemm* ready = gemms_[ordinal].load(std::memory_order_acquire)) return *ready;
  }
  device(ordinal);  // throws for an ordinal the machine lacks
  const CublasLtLibrary& lt = CublasLtLibrary::get(site.graph);
  std::lock_guard lock(gemm_mutex_);
  if (CublasLtGemm* ready = gemms_[ordinal].load(std::memory_order_acquire)) return *ready;
  const ContextScope scope = enter(ordinal);
  auto created = std::make_unique<CublasLtGemm>(lt, ordinal, site);
  CublasLtGemm* ready = created.get();
  owned_gemms_[ordinal] = std::move(created);
  gemms_[ordinal].store(ready, std::memory_order_release);
  return *ready;
}

void CudaLauncher::run_gemm(int ordinal, const GemmProblem& problem, const GemmOperands& operands,
                            void* stream, std::string_view graph, std::string_view launch) {
  const GemmSite site{graph, launch};
  check_gemm_operands(problem, operands, site);
  if (problem.batch == 0 || problem.m == 0 || problem.n == 0) return;
  if (problem.k == 0) {
    run_empty_product(ordinal, problem, operands, stream, site);
  } else {
    gemm(ordinal, site).run(problem, operands, stream, site);
  }
  synchronize_after(ordinal, stream, site);
}

void CudaLauncher::run_empty_product(int ordinal, const GemmProblem& p,
                                     const GemmOperands& operands, void* stream,
                                     const GemmSite& site) {
  const CudaDriver& cu = CudaDriver::get();
  const auto cu_stream = static_cast<CUstream>(stream);
  auto zero = [&](void* data, size_t bytes) {
    const CUresult result =
        cu.cuMemsetD8Async(reinterpret_cast<CUdeviceptr>(data), 0, bytes, cu_stream);
    if (result != kCudaSuccess) {
      throw CudaError(std::string(site.graph), std::string(site.launch), result,
                      cat("on cuda:", ordinal, ": cuMemsetD8Async failed: ", result_text(result)));
    }
  };
  // Extents were checked: batch * m * n elements fit in int64.
  if (!gemm_has_bias(p.epilogue)) {
    // relu(0) is 0 too.
    zero(operands.d.data,
         static_cast<size_t>(p.batch * p.m * p.n) * static_cast<size_t>(dtype_size(p.d_dtype)));
    return;
  }
  // epilogue(0 + bias): a k = 1 gemm over zeros, whose product is exactly 0;
  // A (m x 1) and B (1 x n) share one zeroed vector, reused for every batch.
  const int64_t zeros = std::max(p.m, p.n);
  const Scratch scratch(*this, ordinal,
                        static_cast<size_t>(zeros) * static_cast<size_t>(dtype_size(p.a_dtype)),
                        stream);
  zero(scratch.data(), static_cast<size_t>(zeros) * static_cast<size_t>(dtype_size(p.a_dtype)));
  GemmProblem q = p;
  q.k = 1;
  q.trans_a = false;
  q.trans_b = false;
  q.lda = 1;
  q.ldb = p.n;
  q.stride_a = 0;
  q.stride_b = 0;
  GemmOperands o = operands;
  o.a = {scratch.data(), zeros};
  o.b = {scratch.data(), zeros};
  check_gemm_operands(q, o, site);
  gemm(ordinal, site).run(q, o, stream, site);
}

void CudaLauncher::synchronize_after(int ordinal, void* stream, const GemmSite& site) {
  if (!synchronize_) return;
  const CUresult result = CudaDriver::get().cuStreamSynchronize(static_cast<CUstream>(stream));
  if (result != kCudaSuccess) {
    throw CudaError(std::string(site.graph), std::string(site.launch), result,
                    cat("on cuda:", ordinal,
                        ": the gemm failed (cuStreamSynchronize after it): ", result_text(result)));
  }
}

}  // namespace kiln::detail
