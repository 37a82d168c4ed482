// cuBLASLt, opened with dlopen the first time a gemm launch runs: the
// runtime links no CUDA library, so packages without gemms (and their CPU
// graphs) run where cuBLASLt is not installed. The few types and values it
// needs are declared here as cublasLt.h, cublas_api.h and library_types.h
// have them (CUDA 13), which must not be included.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::detail {

// Namespaced stand-ins for cuBLASLt's handle types, as cuda_driver.h does
// for the driver's, so the runtime's symbols stay apart from an
// application's cublasLt.h. Descriptors are initialized in caller-owned
// storage (the *Init_internal entry points), so a gemm allocates nothing.
using cublasStatus_t = int;
using cublasLtHandle_t = struct CublasLtContext*;
using cublasLtMatmulDesc_t = void*;
using cublasLtMatrixLayout_t = void*;
using cublasLtMatmulPreference_t = void*;

inline constexpr cublasStatus_t kCublasSuccess = 0;        // CUBLAS_STATUS_SUCCESS
inline constexpr cublasStatus_t kCublasNotSupported = 15;  // CUBLAS_STATUS_NOT_SUPPORTED
inline constexpr int kCublasCompute32F = 68;               // CUBLAS_COMPUTE_32F
inline constexpr int kCudaR32F = 0;                        // CUDA_R_32F
inline constexpr int kCudaR16F = 2;                        // CUDA_R_16F
inline constexpr int kCudaR16BF = 14;                      // CUDA_R_16BF
inline constexpr int32_t kCublasOpN = 0;                   // CUBLAS_OP_N
inline constexpr int32_t kCublasOpT = 1;                   // CUBLAS_OP_T
inline constexpr uint32_t kCublasLtEpilogueDefault = 1;    // CUBLASLT_EPILOGUE_DEFAULT
inline constexpr uint32_t kCublasLtEpilogueRelu = 2;       // CUBLASLT_EPILOGUE_RELU
inline constexpr uint32_t kCublasLtEpilogueBias = 4;       // CUBLASLT_EPILOGUE_BIAS
inline constexpr uint32_t kCublasLtEpilogueReluBias = 6;   // CUBLASLT_EPILOGUE_RELU_BIAS
// cublasLtMatmulDescAttributes_t
inline constexpr int kMatmulDescTransA = 3;
inline constexpr int kMatmulDescTransB = 4;
inline constexpr int kMatmulDescEpilogue = 7;
inline constexpr int kMatmulDescBiasPointer = 8;
inline constexpr int kMatmulDescBiasBatchStride = 10;
inline constexpr int kMatmulDescBiasDataType = 26;
// cublasLtMatrixLayoutAttribute_t
inline constexpr int kMatrixLayoutBatchCount = 5;
inline constexpr int kMatrixLayoutStridedBatchOffset = 6;
// cublasLtMatmulPreferenceAttributes_t
inline constexpr int kMatmulPrefMaxWorkspaceBytes = 1;
inline constexpr int kMatmulPrefMinAlignmentABytes = 5;
inline constexpr int kMatmulPrefMinAlignmentBBytes = 6;
inline constexpr int kMatmulPrefMinAlignmentCBytes = 7;
inline constexpr int kMatmulPrefMinAlignmentDBytes = 8;

// cublasLtMatmulAlgo_t and cublasLtMatmulHeuristicResult_t, laid out as in
// cublasLt.h.
struct CublasLtMatmulAlgo {
  uint64_t data[8];
};
struct CublasLtHeuristicResult {
  CublasLtMatmulAlgo algo;
  size_t workspace_size;
  cublasStatus_t state;
  float waves_count;
  int reserved[4];
};
static_assert(sizeof(CublasLtHeuristicResult) == 96, "cublasLtMatmulHeuristicResult_t is 96 bytes");

// cuBLASLt's entry points, loaded once per process. Members are named after
// the API functions (cublaslt_symbols.inc lists them).
class CublasLtLibrary {
 public:
  // Loads cuBLASLt and resolves every entry point, once per process (safe
  // from any thread). The files tried are cublaslt_candidates(), in order;
  // the first dlopen accepts is used. A failure is remembered, not retried,
  // and thrown by this and every later call as Error(library_unavailable)
  // naming `graph`, every file tried with dlopen's reason, and how to fix it.
  static const CublasLtLibrary& get(std::string_view graph);

// NOLINTNEXTLINE(bugprone-macro-parentheses): it declares, a type cannot be parenthesized
#define KILN_DYNAMIC_SYMBOL(result, name, suffix, params) result(*name) params = nullptr;
#include "cublaslt_symbols.inc"
#undef KILN_DYNAMIC_SYMBOL

  size_t version = 0;  // cublasLtGetVersion: major * 10000 + minor * 100 + patch
  std::string path;    // the file loaded

  // "CUBLAS_STATUS_NOT_SUPPORTED (the functionality requested is not
  // supported)"; "cublasStatus 42" for a value cuBLASLt does not name.
  std::string status_text(cublasStatus_t status) const;

 private:
  CublasLtLibrary() = default;
  // Fills problem_ instead of throwing, so that call_once completes and the
  // failure is not retried.
  void load();

  std::string problem_;
};

// The files CublasLtLibrary::get tries, in order: $KILN_LIBCUBLASLT alone
// when it is set and not empty; else libcublasLt.so.13 and libcublasLt.so.12
// by the loader's own search (which also finds one the process already
// loaded, PyTorch's say), then under $CUDA_HOME/lib64 (when set) and
// /usr/local/cuda/lib64.
std::vector<std::string> cublaslt_candidates();

}  // namespace kiln::detail
