// The CUDA driver API, opened with dlopen on first use: the runtime links no
// CUDA library, so it loads and runs CPU packages on machines without an
// NVIDIA driver. The few types and constants it needs are declared here with
// the values of cuda.h (CUDA 13), which must not be included.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln::detail {

// The handles are opaque pointers in cuda.h too; these namespaced stand-ins
// keep the runtime's symbols apart from an application that includes cuda.h.
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CuContextHandle*;
using CUmodule = struct CuModuleHandle*;
using CUfunction = struct CuFunctionHandle*;
using CUstream = struct CuStreamHandle*;

inline constexpr CUresult kCudaSuccess = 0;                       // CUDA_SUCCESS
inline constexpr CUresult kCudaErrorNoDevice = 100;               // CUDA_ERROR_NO_DEVICE
inline constexpr CUresult kCudaErrorInvalidContext = 201;         // CUDA_ERROR_INVALID_CONTEXT
inline constexpr CUresult kCudaErrorUnsupportedPtxVersion = 222;  // ..._UNSUPPORTED_PTX_VERSION
inline constexpr CUresult kCudaErrorInvalidHandle = 400;          // CUDA_ERROR_INVALID_HANDLE
inline constexpr CUresult kCudaErrorNotSupported = 801;           // CUDA_ERROR_NOT_SUPPORTED
inline constexpr int kCuDeviceAttributeComputeCapabilityMajor = 75;
inline constexpr int kCuDeviceAttributeComputeCapabilityMinor = 76;
inline constexpr int kCuFuncAttributeMaxDynamicSharedSizeBytes = 8;
inline constexpr int kCuJitErrorLogBuffer = 5;
inline constexpr int kCuJitErrorLogBufferSizeBytes = 6;

// Errors after which the context is unusable: every later call on it returns
// the same result, whichever kernel caused it.
bool is_sticky_result(CUresult result) noexcept;

// The driver's entry points, loaded once per process. Members are named after
// the API functions (cuda_driver_symbols.inc lists them); each is the symbol
// libcuda exports for it (the _v2 names where cuda.h #defines the plain name
// to them).
class CudaDriver {
 public:
  // Loads libcuda.so.1 ($KILN_LIBCUDA instead, when set), resolves every
  // entry point and calls cuInit(0), once. Throws Error(cuda_unavailable)
  // naming what failed; the failure is remembered and thrown again, with the
  // same text, by every later call.
  static CudaDriver& get();

// NOLINTNEXTLINE(bugprone-macro-parentheses): it declares, a type cannot be parenthesized
#define KILN_DYNAMIC_SYMBOL(result, name, suffix, params) result(*name) params = nullptr;
#include "cuda_driver_symbols.inc"
#undef KILN_DYNAMIC_SYMBOL

  int version = 0;  // cuDriverGetVersion: 1000 * major + 10 * minor

 private:
  CudaDriver() = default;
  // Fills problem_ instead of throwing, so that call_once completes and the
  // failure is not retried.
  void load();

  std::string problem_;
};

// "CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)";
// "CUresult 12345" for a value the driver does not know, or without a driver.
std::string result_text(CUresult result);

}  // namespace kiln::detail
