// Where the examples run their graphs: a CUDA device when the app was built
// with the CUDA runtime and the machine has a GPU, else host memory. Kiln
// takes both the same way (DLPack tensors); only the memory differs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <dlpack/dlpack.h>

class DeviceBuffers {
 public:
  // The first CUDA device, or the CPU. `why_cpu` says why no GPU was used:
  // "no GPU: no CUDA driver: ...", as the Kiln runtime says it.
  static DeviceBuffers detect(std::string* why_cpu);
  static DeviceBuffers host() { return DeviceBuffers(); }
  DeviceBuffers(DeviceBuffers&& other) noexcept;
  DeviceBuffers& operator=(DeviceBuffers&&) = delete;
  ~DeviceBuffers();

  bool is_cuda() const { return cuda_; }
  const std::string& description() const { return description_; }  // "NVIDIA H200 (cuda:0, sm_90)"
  DLDevice device() const { return {cuda_ ? kDLCUDA : kDLCPU, 0}; }
  void* stream() const { return stream_; }

  // Memory holding `bytes`, owned by this object.
  void* upload(const std::vector<uint8_t>& bytes);
  std::vector<uint8_t> download(const void* data, size_t size);
  void synchronize();

 private:
  DeviceBuffers() = default;
  bool cuda_ = false;
  std::string description_ = "CPU";
  void* stream_ = nullptr;
  std::vector<void*> allocations_;
};
