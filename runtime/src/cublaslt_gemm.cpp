#include "cublaslt_gemm.h"

#include <cstdio>

#include "kiln/error.h"
#include "log_topics.h"
#include "text.h"

namespace kiln::detail {
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

}  // namespace kiln::detail
