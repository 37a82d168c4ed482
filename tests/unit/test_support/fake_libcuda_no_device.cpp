// A stand-in for libcuda.so.1 on a machine whose driver sees no GPU: every
// entry point the runtime resolves (runtime/src/cuda_driver_symbols.inc) is
// here, and cuInit fails with CUDA_ERROR_NO_DEVICE, as the real driver does
// when no device is present or visible. Loaded through KILN_LIBCUDA by
// test_cuda_no_device.

namespace {

constexpr int kCudaSuccess = 0;
constexpr int kCudaErrorInvalidValue = 1;
constexpr int kCudaErrorNotInitialized = 3;
constexpr int kCudaErrorNoDevice = 100;

}  // namespace

extern "C" {

int cuInit(unsigned int /*flags*/) { return kCudaErrorNoDevice; }

// The driver names its results even before cuInit succeeds.
int cuGetErrorName(int error, const char** text) {
  if (error != kCudaErrorNoDevice) return kCudaErrorInvalidValue;
  *text = "CUDA_ERROR_NO_DEVICE";
  return kCudaSuccess;
}

int cuGetErrorString(int error, const char** text) {
  if (error != kCudaErrorNoDevice) return kCudaErrorInvalidValue;
  *text = "no CUDA-capable device is detected";
  return kCudaSuccess;
}

// The rest are only resolved, never called once cuInit has failed; each
// answers as the driver does before initialization.
#define KILN_FAKE_UNINITIALIZED(name) \
  int name() { return kCudaErrorNotInitialized; }
KILN_FAKE_UNINITIALIZED(cuDriverGetVersion)
KILN_FAKE_UNINITIALIZED(cuDeviceGetCount)
KILN_FAKE_UNINITIALIZED(cuDeviceGet)
KILN_FAKE_UNINITIALIZED(cuDeviceGetAttribute)
KILN_FAKE_UNINITIALIZED(cuDeviceGetName)
KILN_FAKE_UNINITIALIZED(cuDevicePrimaryCtxRetain)
KILN_FAKE_UNINITIALIZED(cuDevicePrimaryCtxRelease_v2)
KILN_FAKE_UNINITIALIZED(cuCtxGetCurrent)
KILN_FAKE_UNINITIALIZED(cuCtxPushCurrent_v2)
KILN_FAKE_UNINITIALIZED(cuCtxPopCurrent_v2)
KILN_FAKE_UNINITIALIZED(cuModuleLoadDataEx)
KILN_FAKE_UNINITIALIZED(cuModuleUnload)
KILN_FAKE_UNINITIALIZED(cuModuleGetFunction)
KILN_FAKE_UNINITIALIZED(cuFuncSetAttribute)
KILN_FAKE_UNINITIALIZED(cuLaunchKernel)
KILN_FAKE_UNINITIALIZED(cuStreamSynchronize)
KILN_FAKE_UNINITIALIZED(cuMemAllocAsync)
KILN_FAKE_UNINITIALIZED(cuMemFreeAsync)
KILN_FAKE_UNINITIALIZED(cuMemsetD8Async)
#undef KILN_FAKE_UNINITIALIZED

}  // extern "C"
