#include "cuda_driver.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <type_traits>

#include "kiln/cuda_devices.h"
#include "kiln/error.h"
#include "text.h"

namespace kiln::detail {
namespace {

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
  const char* override_path = std::getenv("KILN_LIBCUDA");
  const bool overridden = override_path != nullptr && *override_path != '\0';
  const std::string library = overridden ? override_path : "libcuda.so.1";
  const std::string origin = overridden ? cat(library, " from KILN_LIBCUDA") : library;
  // Never closed: function pointers and modules of every package point into it.
  void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    problem_ =
        cat("kiln: no GPU: no CUDA driver: dlopen(", origin, ") failed: ", why ? why : "unknown",
            "; CUDA tensors need an NVIDIA GPU and its driver");
    return;
  }
  bool complete = true;
  auto resolve = [&](auto& entry, const char* symbol) {
    if (!complete) return;
    void* address = ::dlsym(handle, symbol);
    if (address == nullptr) {
      // cuMemAllocAsync, the newest entry point used, came with CUDA 11.2.
      problem_ = cat("kiln: no GPU: the CUDA driver ", origin, " has no ", symbol,
                     "; Kiln needs an NVIDIA driver for CUDA 11.2 or newer");
      complete = false;
      return;
    }
    entry = reinterpret_cast<std::remove_reference_t<decltype(entry)>>(address);
  };
  resolve(cuInit, "cuInit");
  resolve(cuDriverGetVersion, "cuDriverGetVersion");
  resolve(cuGetErrorName, "cuGetErrorName");
  resolve(cuGetErrorString, "cuGetErrorString");
  resolve(cuDeviceGetCount, "cuDeviceGetCount");
  resolve(cuDeviceGet, "cuDeviceGet");
  resolve(cuDeviceGetAttribute, "cuDeviceGetAttribute");
  resolve(cuDeviceGetName, "cuDeviceGetName");
  resolve(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  resolve(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
  resolve(cuCtxGetCurrent, "cuCtxGetCurrent");
  resolve(cuCtxPushCurrent, "cuCtxPushCurrent_v2");
  resolve(cuCtxPopCurrent, "cuCtxPopCurrent_v2");
  resolve(cuModuleLoadDataEx, "cuModuleLoadDataEx");
  resolve(cuModuleUnload, "cuModuleUnload");
  resolve(cuModuleGetFunction, "cuModuleGetFunction");
  resolve(cuFuncSetAttribute, "cuFuncSetAttribute");
  resolve(cuLaunchKernel, "cuLaunchKernel");
  resolve(cuStreamSynchronize, "cuStreamSynchronize");
  resolve(cuMemAllocAsync, "cuMemAllocAsync");
  resolve(cuMemFreeAsync, "cuMemFreeAsync");
  resolve(cuMemsetD8Async, "cuMemsetD8Async");
  if (!complete) return;
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
