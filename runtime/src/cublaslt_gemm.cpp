#include "cublaslt_gemm.h"

#include <algorithm>
#include <cstdio>

#include "cuda_launcher.h"
#include "device_workspace.h"
#include "kiln/error.h"
#include "log_topics.h"
#include "text.h"

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

namespace {

int cuda_data_type(DType t) {
  switch (t) {
    case DType::f16:
      return kCudaR16F;
    case DType::bf16:
      return kCudaR16BF;
    default:
      return kCudaR32F;  // gemm_extents() admits f32 besides those two
  }
}

uint32_t cublaslt_epilogue(GemmEpilogue e) {
  switch (e) {
    case GemmEpilogue::bias:
      return kCublasLtEpilogueBias;
    case GemmEpilogue::relu:
      return kCublasLtEpilogueRelu;
    case GemmEpilogue::bias_relu:
      return kCublasLtEpilogueReluBias;
    default:
      return kCublasLtEpilogueDefault;
  }
}

// Collects the first refusal of a run of descriptor calls, so that building
// reads as a list of settings.
class Settings {
 public:
  Settings(const CublasLtLibrary& lt, const GemmSite& site) : lt_(lt), site_(site) {}
  void check(cublasStatus_t status, const char* what) {
    if (status == kCublasSuccess) return;
    throw Error(ErrorCode::internal,
                cat(site_.prefix(), "cuBLASLt refused ", what, ": ", lt_.status_text(status)));
  }
  template <class T>
  void matmul(void* desc, int attribute, const T& value, const char* what) {
    check(lt_.cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof value), what);
  }
  template <class T>
  void layout(void* desc, int attribute, const T& value, const char* what) {
    check(lt_.cublasLtMatrixLayoutSetAttribute(desc, attribute, &value, sizeof value), what);
  }
  template <class T>
  void preference(void* pref, int attribute, const T& value, const char* what) {
    check(lt_.cublasLtMatmulPreferenceSetAttribute(pref, attribute, &value, sizeof value), what);
  }

 private:
  const CublasLtLibrary& lt_;
  const GemmSite& site_;
};

void batch_layout(Settings& s, void* layout, int64_t batch, int64_t stride) {
  if (batch == 1) return;
  s.layout(layout, kMatrixLayoutBatchCount, static_cast<int32_t>(batch), "the batch count");
  s.layout(layout, kMatrixLayoutStridedBatchOffset, stride, "a batch stride");
}

}  // namespace

size_t cublaslt_workspace_bytes(int compute_capability) noexcept {
  return compute_capability >= 90 ? size_t{32} << 20 : size_t{4} << 20;
}

void build_gemm_descriptors(const CublasLtLibrary& lt, const GemmProblem& p, const void* bias,
                            GemmDescriptors& out, const GemmSite& site) {
  Settings s(lt, site);
  s.check(lt.cublasLtMatmulDescInit_internal(out.matmul, sizeof out.matmul, kCublasCompute32F,
                                             kCudaR32F),
          "the matmul descriptor");
  // cuBLASLt's A is B's memory: B stored k x n row-major is n x k
  // column-major, already op(B)^T; stored n x k (trans_b) it is k x n and
  // must be transposed. Likewise A.
  s.matmul(out.matmul, kMatmulDescTransA, p.trans_b ? kCublasOpT : kCublasOpN, "trans_b");
  s.matmul(out.matmul, kMatmulDescTransB, p.trans_a ? kCublasOpT : kCublasOpN, "trans_a");
  if (p.epilogue != GemmEpilogue::none) {
    s.matmul(out.matmul, kMatmulDescEpilogue, cublaslt_epilogue(p.epilogue), "the epilogue");
  }
  if (gemm_has_bias(p.epilogue)) {
    // The bias runs along D^T's rows, D's columns: n elements, one vector
    // for every batch.
    s.matmul(out.matmul, kMatmulDescBiasPointer, bias, "the bias pointer");
    s.matmul(out.matmul, kMatmulDescBiasDataType, static_cast<int32_t>(cuda_data_type(p.d_dtype)),
             "the bias dtype");
    s.matmul(out.matmul, kMatmulDescBiasBatchStride, int64_t{0}, "the bias batch stride");
  }
  const auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  s.check(lt.cublasLtMatrixLayoutInit_internal(out.first, sizeof out.first,
                                               cuda_data_type(p.b_dtype), u(p.trans_b ? p.k : p.n),
                                               u(p.trans_b ? p.n : p.k), p.ldb),
          "B's layout");
  s.check(lt.cublasLtMatrixLayoutInit_internal(out.second, sizeof out.second,
                                               cuda_data_type(p.a_dtype), u(p.trans_a ? p.m : p.k),
                                               u(p.trans_a ? p.k : p.m), p.lda),
          "A's layout");
  s.check(lt.cublasLtMatrixLayoutInit_internal(out.d, sizeof out.d, cuda_data_type(p.d_dtype),
                                               u(p.n), u(p.m), p.n),
          "D's layout");
  batch_layout(s, out.first, p.batch, p.stride_b);
  batch_layout(s, out.second, p.batch, p.stride_a);
  batch_layout(s, out.d, p.batch, p.m * p.n);
}

CublasLtGemm::CublasLtGemm(const CublasLtLibrary& lt, int ordinal, const GemmSite& site)
    : lt_(lt), ordinal_(ordinal) {
  const cublasStatus_t status = lt.cublasLtCreate(&handle_);
  if (status != kCublasSuccess) {
    handle_ = nullptr;
    throw Error(ErrorCode::cuda_error, cat(site.prefix(), "cublasLtCreate failed on cuda:", ordinal,
                                           ": ", lt.status_text(status)));
  }
}

CublasLtGemm::~CublasLtGemm() {
  // The result is ignored: at exit the driver may be gone, and there is
  // nobody to tell.
  if (handle_ != nullptr) lt_.cublasLtDestroy(handle_);
}

GemmAlgo CublasLtGemm::choose(const GemmDescriptors& descriptors, const GemmAlgoKey& key,
                              const GemmProblem& p, const GemmSite& site) const {
  Settings s(lt_, site);
  uint64_t preference[16];
  s.check(lt_.cublasLtMatmulPreferenceInit_internal(preference, sizeof preference),
          "the heuristic's preference");
  s.preference(preference, kMatmulPrefMaxWorkspaceBytes, key.workspace_bytes, "the workspace");
  // cuBLASLt's A is B's memory, its B A's; C is D.
  const auto bytes = [](uint8_t log2) { return uint32_t{1} << log2; };
  s.preference(preference, kMatmulPrefMinAlignmentABytes, bytes(key.align_b), "B's alignment");
  s.preference(preference, kMatmulPrefMinAlignmentBBytes, bytes(key.align_a), "A's alignment");
  s.preference(preference, kMatmulPrefMinAlignmentCBytes, bytes(key.align_d), "D's alignment");
  s.preference(preference, kMatmulPrefMinAlignmentDBytes, bytes(key.align_d), "D's alignment");
  // The descriptors are only read.
  auto* d = const_cast<GemmDescriptors*>(&descriptors);
  CublasLtHeuristicResult result{};
  int returned = 0;
  const cublasStatus_t status = lt_.cublasLtMatmulAlgoGetHeuristic(
      handle_, d->matmul, d->first, d->second, d->d, d->d, preference, 1, &result, &returned);
  if (status != kCublasSuccess || returned < 1 || result.state != kCublasSuccess) {
    throw Error(
        ErrorCode::cuda_error,
        cat(site.prefix(), "cuBLASLt has no algorithm for this gemm on cuda:", ordinal_,
            " (cublasLtMatmulAlgoGetHeuristic: ",
            lt_.status_text(status != kCublasSuccess ? status : result.state), ", ", returned,
            " results; workspace up to ", key.workspace_bytes, " bytes): ", gemm_text(p)));
  }
  GemmAlgo chosen;
  for (size_t i = 0; i < chosen.algo.size(); ++i) chosen.algo[i] = result.algo.data[i];
  chosen.workspace_bytes = result.workspace_size;
  if (log_topic_enabled("gemm")) {
    std::fprintf(
        stderr, "%s",
        cat("kiln: gemm: graph '", site.graph, "', ", site.launch, " on cuda:", ordinal_, ": ",
            gemm_text(p), ": heuristic chose an algorithm using ", chosen.workspace_bytes,
            " workspace bytes (", algorithms_.misses() + 1, " chosen on this device)\n")
            .c_str());
  }
  return chosen;
}

void CublasLtGemm::run(const GemmProblem& p, const GemmOperands& operands, void* stream,
                       const GemmSite& site) {
  GemmDescriptors descriptors;
  build_gemm_descriptors(lt_, p, operands.bias.data, descriptors, site);
  const GemmAlgoKey key = gemm_algo_key(ordinal_, p, operands);
  const GemmAlgo algo = algorithms_.get(key, [&] { return choose(descriptors, key, p, site); });
  if (algo.workspace_bytes > operands.workspace_bytes) {
    throw Error(ErrorCode::internal,
                cat(site.prefix(), "the gemm's algorithm needs ", algo.workspace_bytes,
                    " workspace bytes, the call has ", operands.workspace_bytes));
  }
  CublasLtMatmulAlgo chosen;
  for (size_t i = 0; i < algo.algo.size(); ++i) chosen.data[i] = algo.algo[i];
  // Scale type f32: alpha and beta are floats read on the host.
  const float alpha = static_cast<float>(p.alpha);
  const float beta = 0.0f;
  const cublasStatus_t status = lt_.cublasLtMatmul(
      handle_, descriptors.matmul, &alpha, operands.b.data, descriptors.first, operands.a.data,
      descriptors.second, &beta, operands.d.data, descriptors.d, operands.d.data, descriptors.d,
      &chosen, operands.workspace, operands.workspace_bytes, stream);
  if (status != kCublasSuccess) {
    throw Error(ErrorCode::cuda_error,
                cat(site.prefix(), "cublasLtMatmul failed on cuda:", ordinal_, ": ",
                    lt_.status_text(status), ": ", gemm_text(p)));
  }
}

// CudaLauncher's library calls: gemm launches through the device's
// cuBLASLt, for the package's plans and the JIT's.

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
  const DeviceWorkspace scratch(
      *this, ordinal, static_cast<size_t>(zeros) * static_cast<size_t>(dtype_size(p.a_dtype)),
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
