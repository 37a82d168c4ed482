// Where gpu_check's tensors live: a CUDA device, used through one
// non-default stream, or (with --cpu) host memory, so the same checks run
// against the package's CPU specializations where there is no GPU. Each
// tensor sits between two red zones, so a kernel that writes past either end
// of an output is caught, not just one that computes a wrong value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include <kiln/dtype.h>
#include <kiln/runtime.h>

namespace kiln_gpu {

// How a call's tensors are presented to the runtime. The vectorized CUDA
// specializations require 16-byte alignment; the misaligned forms are one
// element off it (through the data pointer, or DLTensor::byte_offset), which
// must select an element-aligned fallback and still compute the same values.
// misaligned_output leaves every tensor aligned but the last output (for a
// DeviceTensor it means the same as misaligned_pointer).
enum class Layout : uint8_t {
  aligned,
  misaligned_pointer,
  misaligned_byte_offset,
  misaligned_output,
};

std::string_view layout_name(Layout layout);

class Memory {
 public:
  // Creates a non-blocking stream on `device`, so nothing passes only
  // because it ran on the legacy default stream.
  static std::unique_ptr<Memory> cuda(int device);
  static std::unique_ptr<Memory> host();
  ~Memory();
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;

  bool is_cuda() const { return device_.device_type == kDLCUDA; }
  DLDevice device() const { return device_; }
  // What Graph::call takes: the cudaStream_t, or nullptr on the host.
  void* stream() const { return stream_; }

  // 256-byte aligned, as cudaMalloc is.
  void* allocate(size_t bytes);
  void release(void* data) noexcept;
  void upload(void* dst, const void* src, size_t bytes);
  void download(void* dst, const void* src, size_t bytes);
  void fill(void* dst, uint8_t byte, size_t bytes);
  // Waits for the stream; a kernel fault surfaces here as a CudaCallError.
  void synchronize();

 private:
  explicit Memory(DLDevice device) : device_(device) {}
  void make_current() const;

  DLDevice device_;
  void* stream_ = nullptr;
};

// One tensor in a Memory: the allocation, its red zones, and the DLTensor
// that presents it in a Layout.
class DeviceTensor {
 public:
  static constexpr size_t kRedZone = 256;
  static constexpr uint8_t kPoison = 0xA5;

  DeviceTensor(Memory& memory, kiln::DType dtype, std::vector<int64_t> shape, Layout layout);
  ~DeviceTensor();
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;

  const DLTensor* dl() const { return &tensor_; }
  kiln::DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  size_t bytes() const { return bytes_; }

  // Poisons the whole allocation, then writes the tensor's bytes.
  void upload(const std::vector<uint8_t>& bytes);
  // Poisons the whole allocation: what an output holds before the call.
  void poison();
  // The tensor's bytes.
  std::vector<uint8_t> download() const;
  // Whether the red zones around the tensor still hold only the poison.
  bool red_zones_intact() const;

 private:
  Memory& memory_;
  kiln::DType dtype_;
  std::vector<int64_t> shape_;
  size_t bytes_ = 0;
  size_t offset_ = 0;  // of the tensor's first byte from the allocation's start
  std::byte* base_ = nullptr;
  DLTensor tensor_{};
};

}  // namespace kiln_gpu
