#include "gpu_memory.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "cuda_support.h"

namespace kiln_gpu {

std::string_view layout_name(Layout layout) {
  switch (layout) {
    case Layout::aligned:
      return "aligned";
    case Layout::misaligned_pointer:
      return "misaligned";
    case Layout::misaligned_byte_offset:
      return "byte_offset";
    case Layout::misaligned_output:
      return "out_misaligned";
  }
  return "?";
}

std::unique_ptr<Memory> Memory::cuda(int device) {
  std::unique_ptr<Memory> m(new Memory(DLDevice{kDLCUDA, device}));
  m->make_current();
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  m->stream_ = stream;
  return m;
}

std::unique_ptr<Memory> Memory::host() {
  return std::unique_ptr<Memory>(new Memory(DLDevice{kDLCPU, 0}));
}

Memory::~Memory() {
  if (stream_ != nullptr) {
    make_current();
    cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
  }
}

// Several Memory objects may be on different devices (the device-1 subset),
// so each call names its device rather than trusting the current one.
void Memory::make_current() const {
  if (is_cuda()) check_cuda(cudaSetDevice(device_.device_id), "cudaSetDevice");
}

void* Memory::allocate(size_t bytes) {
  if (!is_cuda()) {
    void* p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  make_current();
  void* p = nullptr;
  check_cuda(cudaMalloc(&p, bytes), "cudaMalloc");
  return p;
}

void Memory::release(void* data) noexcept {
  if (data == nullptr) return;
  if (!is_cuda()) {
    std::free(data);
    return;
  }
  cudaSetDevice(device_.device_id);
  cudaFree(data);
}

void Memory::upload(void* dst, const void* src, size_t bytes) {
  if (!is_cuda()) {
    std::memcpy(dst, src, bytes);
    return;
  }
  make_current();
  auto s = static_cast<cudaStream_t>(stream_);
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s), "cudaMemcpyAsync (H2D)");
  check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize after an upload");
}

void Memory::download(void* dst, const void* src, size_t bytes) {
  if (!is_cuda()) {
    std::memcpy(dst, src, bytes);
    return;
  }
  make_current();
  auto s = static_cast<cudaStream_t>(stream_);
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync (D2H)");
  check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize after a download");
}

void Memory::fill(void* dst, uint8_t byte, size_t bytes) {
  if (!is_cuda()) {
    std::memset(dst, byte, bytes);
    return;
  }
  make_current();
  auto s = static_cast<cudaStream_t>(stream_);
  check_cuda(cudaMemsetAsync(dst, byte, bytes, s), "cudaMemsetAsync");
  check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize after a fill");
}

void Memory::synchronize() {
  if (!is_cuda()) return;
  make_current();
  check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)),
             "cudaStreamSynchronize after the call");
}

DeviceTensor::DeviceTensor(Memory& memory, kiln::DType dtype, std::vector<int64_t> shape,
                           Layout layout)
    : memory_(memory), dtype_(dtype), shape_(std::move(shape)) {
  int64_t numel = 1;
  for (int64_t d : shape_) numel *= d;
  const auto element = static_cast<size_t>(kiln::dtype_size(dtype_));
  bytes_ = static_cast<size_t>(numel) * element;
  // One element past a 256-byte boundary is element-aligned but never
  // 16-byte aligned for elements of 1, 2, 4 or 8 bytes.
  const size_t skew = layout == Layout::aligned ? 0 : element;
  offset_ = kRedZone + skew;
  base_ = static_cast<std::byte*>(memory_.allocate(offset_ + bytes_ + kRedZone));

  tensor_.device = memory_.device();
  tensor_.ndim = static_cast<int32_t>(shape_.size());
  tensor_.dtype = kiln::to_dlpack(dtype_);
  tensor_.shape = shape_.data();
  tensor_.strides = nullptr;
  if (layout == Layout::misaligned_byte_offset) {
    tensor_.data = base_ + kRedZone;
    tensor_.byte_offset = skew;
  } else {
    tensor_.data = base_ + offset_;
    tensor_.byte_offset = 0;
  }
}

DeviceTensor::~DeviceTensor() { memory_.release(base_); }

void DeviceTensor::upload(const std::vector<uint8_t>& bytes) {
  if (bytes.size() != bytes_) throw std::logic_error("gpu_check: upload of the wrong size");
  poison();
  memory_.upload(base_ + offset_, bytes.data(), bytes_);
}

void DeviceTensor::poison() { memory_.fill(base_, kPoison, offset_ + bytes_ + kRedZone); }

std::vector<uint8_t> DeviceTensor::download() const {
  std::vector<uint8_t> out(bytes_);
  memory_.download(out.data(), base_ + offset_, bytes_);
  return out;
}

bool DeviceTensor::red_zones_intact() const {
  std::vector<uint8_t> before(offset_);
  std::vector<uint8_t> after(kRedZone);
  memory_.download(before.data(), base_, before.size());
  memory_.download(after.data(), base_ + offset_ + bytes_, after.size());
  auto poisoned = [](const std::vector<uint8_t>& v) {
    return std::all_of(v.begin(), v.end(), [](uint8_t b) { return b == kPoison; });
  };
  return poisoned(before) && poisoned(after);
}

}  // namespace kiln_gpu
