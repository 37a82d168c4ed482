#include "device_buffers.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include <kiln/cuda_devices.h>
#include <kiln/error.h>

#if KILN_EXAMPLES_CUDA
#include <cuda_runtime.h>
#endif

namespace {

#if KILN_EXAMPLES_CUDA
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(e));
  }
}
#endif

}  // namespace

DeviceBuffers DeviceBuffers::detect(std::string* why_cpu) {
  DeviceBuffers d;
  // Kiln's runtime decides whether CUDA tensors can run, so ask it first:
  // it says "no GPU" plainly where the CUDA runtime, finding no libcuda,
  // reports cudaErrorInsufficientDriver ("CUDA driver version is
  // insufficient for CUDA runtime version").
  try {
    kiln::cuda_device_count();
  } catch (const kiln::Error& e) {
    if (e.code() != kiln::ErrorCode::cuda_unavailable) throw;
    if (why_cpu) {
      constexpr std::string_view kPrefix = "kiln: ";
      std::string_view why = e.what();
      if (why.starts_with(kPrefix)) why.remove_prefix(kPrefix.size());
      *why_cpu = why;
    }
    return d;
  }
#if KILN_EXAMPLES_CUDA
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    // Kiln sees a GPU, the CUDA runtime the examples allocate with does not
    // (a cudart newer than the driver, say): its own words.
    if (why_cpu) {
      *why_cpu = std::string("the CUDA runtime cannot use the GPU: ") +
                 (e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device");
    }
    cudaGetLastError();
    return d;
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  check(cudaSetDevice(0), "cudaSetDevice");
  cudaStream_t stream = nullptr;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  d.cuda_ = true;
  d.stream_ = stream;
  d.description_ = std::string(prop.name) + " (cuda:0, sm_" + std::to_string(prop.major) +
                   std::to_string(prop.minor) + ")";
#else
  if (why_cpu) *why_cpu = "a GPU is there, but this example was built without the CUDA toolkit";
#endif
  return d;
}

DeviceBuffers::DeviceBuffers(DeviceBuffers&& other) noexcept
    : cuda_(other.cuda_),
      description_(std::move(other.description_)),
      stream_(other.stream_),
      allocations_(std::move(other.allocations_)) {
  other.stream_ = nullptr;
  other.allocations_.clear();
}

DeviceBuffers::~DeviceBuffers() {
  for (void* p : allocations_) {
#if KILN_EXAMPLES_CUDA
    if (cuda_) {
      cudaFree(p);
      continue;
    }
#endif
    std::free(p);
  }
#if KILN_EXAMPLES_CUDA
  if (stream_ != nullptr) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
#endif
}

void* DeviceBuffers::upload(const std::vector<uint8_t>& bytes) {
  const size_t size = bytes.empty() ? 1 : bytes.size();
  void* p = nullptr;
#if KILN_EXAMPLES_CUDA
  if (cuda_) {
    check(cudaMalloc(&p, size), "cudaMalloc");
    allocations_.push_back(p);
    check(cudaMemcpy(p, bytes.data(), bytes.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
    return p;
  }
#endif
  // 64-byte aligned, as a tensor library would hand out.
  p = std::aligned_alloc(64, (size + 63) / 64 * 64);
  if (p == nullptr) throw std::bad_alloc();
  allocations_.push_back(p);
  std::memcpy(p, bytes.data(), bytes.size());
  return p;
}

std::vector<uint8_t> DeviceBuffers::download(const void* data, size_t size) {
  std::vector<uint8_t> out(size);
#if KILN_EXAMPLES_CUDA
  if (cuda_) {
    check(cudaMemcpy(out.data(), data, size, cudaMemcpyDeviceToHost), "cudaMemcpy");
    return out;
  }
#endif
  std::memcpy(out.data(), data, size);
  return out;
}

void DeviceBuffers::synchronize() {
#if KILN_EXAMPLES_CUDA
  if (cuda_) check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)), "sync");
#endif
}
