// CUDA runtime helpers shared by the GPU suite's tools: errors as
// exceptions, the device description every result line carries, and the
// timing the benchmarks share.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln_gpu {

// A CUDA runtime call failed. Sticky errors (a kernel fault) leave the
// context unusable, so callers stop at the first one rather than go on.
class CudaCallError : public std::runtime_error {
 public:
  CudaCallError(cudaError_t code, const std::string& what)
      : std::runtime_error(what + ": " + cudaGetErrorName(code) + " (" + cudaGetErrorString(code) +
                           ")"),
        code_(code) {}
  cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};

inline void check_cuda(cudaError_t code, const char* what) {
  if (code != cudaSuccess) throw CudaCallError(code, what);
}

struct DeviceInfo {
  std::string name;          // "NVIDIA H200"
  std::string driver;        // "580.159.04": the kernel module, as nvidia-smi shows it
  std::string cuda_driver;   // "13.0": the CUDA version the driver supports
  std::string cuda_runtime;  // "13.0": the cudart this binary linked
  std::string compute;       // "9.0"
  double memory_gib = 0;
};

inline std::string cuda_version_text(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// The driver's own version is not in the CUDA API (cudaDriverGetVersion gives
// the CUDA version it supports); the kernel module states it, and where
// /proc does not show the module (gVisor), nvidia-smi does.
inline std::string nvidia_driver_version() {
  std::ifstream in("/proc/driver/nvidia/version");
  std::string line;
  // "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build ..."
  if (std::getline(in, line)) {
    std::istringstream words(line.substr(std::min(line.find("Kernel Module"), line.size())));
    std::string word;
    while (words >> word) {
      if (std::isdigit(static_cast<unsigned char>(word[0])) &&
          word.find('.') != std::string::npos) {
        return word;
      }
    }
  }
  std::string version;
  if (FILE* smi =
          popen("nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null", "r")) {
    char buffer[64] = {};
    if (std::fgets(buffer, sizeof buffer, smi) != nullptr) version = buffer;
    pclose(smi);
  }
  while (!version.empty() && (version.back() == '\n' || version.back() == ' ')) version.pop_back();
  return version.empty() ? "unknown" : version;
}

inline DeviceInfo describe_device(int device) {
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  int driver = 0;
  int runtime = 0;
  check_cuda(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
  check_cuda(cudaRuntimeGetVersion(&runtime), "cudaRuntimeGetVersion");
  DeviceInfo info;
  info.name = prop.name;
  info.driver = nvidia_driver_version();
  info.cuda_driver = cuda_version_text(driver);
  info.cuda_runtime = cuda_version_text(runtime);
  info.compute = std::to_string(prop.major) + "." + std::to_string(prop.minor);
  info.memory_gib = static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0);
  return info;
}

// JSON string contents: device names are plain, but a quote or backslash must
// not break a line.
inline std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out;
}

// f32 to bf16, rounding to nearest even, as the interpreter and torch do
// (finite inputs).
inline uint16_t bf16_bits(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Events around `calls` back-to-back launches, `repeats` times: the median of
// the per-call times. Back to back, so launch overhead overlaps the previous
// kernel as it does in a model; the median, so one slow repeat (a clock
// change, another process) does not move the figure.
inline double median_ms_per_call(const std::function<void()>& launch, cudaStream_t stream,
                                 int repeats, int calls) {
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> per_call;
  for (int r = 0; r < repeats; ++r) {
    check_cuda(cudaEventRecord(start, stream), "cudaEventRecord");
    for (int i = 0; i < calls; ++i) launch();
    check_cuda(cudaEventRecord(stop, stream), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    per_call.push_back(static_cast<double>(ms) / calls);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

}  // namespace kiln_gpu
