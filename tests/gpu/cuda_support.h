// CUDA runtime helpers shared by gpu_check and gpu_bench: errors as
// exceptions, and the device description every result line carries.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

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

}  // namespace kiln_gpu
