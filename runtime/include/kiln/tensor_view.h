// A DLTensor that owns its shape and strides arrays, so a caller can write
// `g.call({TensorView(x, kiln::f32, {n, 64})}, ...)` without keeping arrays
// alive. The data itself is borrowed.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>

#include <dlpack/dlpack.h>

#include "kiln/dtype.h"

namespace kiln {

inline constexpr int kMaxTensorRank = 8;

// DLPack 0.8's kDLBool; DLPack 0.6 headers lack the name, not the value.
inline constexpr uint8_t kDLBoolTypeCode = 6;

DLDataType to_dlpack(DType dtype) noexcept;
// The Kiln dtype of a DLPack dtype; {kDLUInt, 8, 1} reads as bool too.
std::optional<DType> dtype_from_dlpack(DLDataType dtype) noexcept;
// "f32", "bf16", or DLPack's own spelling ("uint16", "float32x4") for types
// Kiln does not have.
std::string dlpack_dtype_name(DLDataType dtype);

class TensorView {
 public:
  // Contiguous, on the CPU.
  TensorView(void* data, DType dtype, std::initializer_list<int64_t> shape);
  // Empty strides mean contiguous (DLTensor::strides == NULL).
  TensorView(void* data, DType dtype, std::span<const int64_t> shape,
             std::span<const int64_t> strides = {}, DLDevice device = {kDLCPU, 0});
  // Copies the shape and strides; the data stays the caller's.
  static TensorView from_dlpack(const DLTensor& tensor);

  TensorView(const TensorView& other) noexcept;
  TensorView& operator=(const TensorView& other) noexcept;

  const DLTensor& dl() const noexcept { return tensor_; }

 private:
  TensorView() = default;
  void point_into_self() noexcept;

  DLTensor tensor_{};
  int64_t shape_[kMaxTensorRank]{};
  int64_t strides_[kMaxTensorRank]{};
  bool has_strides_ = false;
};

}  // namespace kiln
