#include "cuda_driver.h"

#include <dlfcn.h>

#include <mutex>
#include <optional>
#include <string_view>

#include "kiln/cuda_devices.h"
#include "kiln/error.h"
#include "kiln/support/env.h"
#include "library_search.h"
#include "text.h"

namespace kiln::detail {
namespace {

constexpr DynamicSymbol<CudaDriver> kDriverSymbols[] = {
#define KILN_DYNAMIC_SYMBOL(result, name, suffix, params) \
  KILN_DYNAMIC_SYMBOL_ENTRY(CudaDriver, name, suffix)
#include "cuda_driver_symbols.inc"
#undef KILN_DYNAMIC_SYMBOL
};

std::string describe_result(const CudaDriver& driver, CUresult result) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (driver.cuGetErrorName(result, &name) != kCudaSuccess || name == nullptr) {
    return cat("CUresult ", result);
  }
  if (driver.cuGetErrorString(result, &text) != kCudaSuccess || text == nullptr) return name;
  return cat(name, " (", text, ")");
}

}  // namespace

bool is_sticky_result(CUresult result) noexcept {
  switch (result) {
    case 214:  // CUDA_ERROR_ECC_UNCORRECTABLE
    case 700:  // CUDA_ERROR_ILLEGAL_ADDRESS
    case 702:  // CUDA_ERROR_LAUNCH_TIMEOUT
    case 710:  // CUDA_ERROR_ASSERT
    case 714:  // CUDA_ERROR_HARDWARE_STACK_ERROR
    case 715:  // CUDA_ERROR_ILLEGAL_INSTRUCTION
    case 716:  // CUDA_ERROR_MISALIGNED_ADDRESS
    case 717:  // CUDA_ERROR_INVALID_ADDRESS_SPACE
    case 718:  // CUDA_ERROR_INVALID_PC
    case 719:  // CUDA_ERROR_LAUNCH_FAILED
    case 721:  // CUDA_ERROR_TENSOR_MEMORY_LEAK
      return true;
    default:
      return false;
  }
}

CudaDriver& CudaDriver::get() {
  // Never destroyed: static destructors of the application (a Package held
  // in a global) may still unload modules through it at exit.
  static CudaDriver* const driver = new CudaDriver();
  static std::once_flag once;
  std::call_once(once, [] { driver->load(); });
  if (!driver->problem_.empty()) throw Error(ErrorCode::cuda_unavailable, driver->problem_);
  return *driver;
}

void CudaDriver::load() {
  const std::optional<std::string_view> override_path = support::env_value("KILN_LIBCUDA");
  const std::string library(override_path.value_or("libcuda.so.1"));
  const std::string origin = override_path ? cat(library, " from KILN_LIBCUDA") : library;
  // Never closed: function pointers and modules of every package point into it.
  void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    problem_ =
        cat("kiln: no GPU: no CUDA driver: dlopen(", origin, ") failed: ", why ? why : "unknown",
            "; CUDA tensors need an NVIDIA GPU and its driver");
    return;
  }
  if (const std::optional<MissingSymbol> missing = resolve_symbols(handle, kDriverSymbols, *this)) {
    problem_ = cat("kiln: no GPU: the CUDA driver ", origin, " has no ", missing->symbol,
                   "; Kiln needs an NVIDIA driver for CUDA 11.2 or newer (", missing->reason, ")");
    return;
  }
  if (const CUresult result = cuInit(0); result != kCudaSuccess) {
    if (result == kCudaErrorNoDevice) {
      // A driver is installed but sees no GPU (none in the machine, or none
      // visible: CUDA_VISIBLE_DEVICES, a container without the device).
      problem_ = cat("kiln: no GPU: the CUDA driver ", origin,
                     " found no CUDA device (cuInit(0): ", describe_result(*this, result), ")");
      return;
    }
    // The stub cannot name its own result, CUDA_ERROR_STUB_LIBRARY (34).
    problem_ = cat("kiln: no GPU: the CUDA driver ", origin,
                   " cannot be used: cuInit(0) failed: ", describe_result(*this, result),
                   result == 34 ? " (the CUDA toolkit's stub library, not a driver)" : "");
    return;
  }
  if (cuDriverGetVersion(&version) != kCudaSuccess) version = 0;
}

std::string result_text(CUresult result) {
  try {
    return describe_result(CudaDriver::get(), result);
  } catch (const Error&) {
    return cat("CUresult ", result);
  }
}

}  // namespace kiln::detail

namespace kiln {

int cuda_device_count() {
  const detail::CudaDriver& driver = detail::CudaDriver::get();
  int count = 0;
  if (const detail::CUresult result = driver.cuDeviceGetCount(&count);
      result != detail::kCudaSuccess) {
    throw Error(ErrorCode::cuda_unavailable, detail::cat("kiln: no GPU: cuDeviceGetCount failed: ",
                                                         detail::describe_result(driver, result)));
  }
  if (count == 0) {
    throw Error(ErrorCode::cuda_unavailable, "kiln: no GPU: the CUDA driver reports no device");
  }
  return count;
}

}  // namespace kiln
