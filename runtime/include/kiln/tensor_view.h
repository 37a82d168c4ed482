/// @file
/// A DLTensor that owns its shape and strides arrays, so a caller can write
/// `g.call({TensorView(x, kiln::f32, {n, 64})}, ...)` without keeping arrays
/// alive. The data itself is borrowed.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>

#include <dlpack/dlpack.h>

#include "kiln/dtype.h"

namespace kiln {

/// The largest rank a tensor may have (TensorView, kiln::input).
inline constexpr int kMaxTensorRank = 8;

/// DLPack 0.8's kDLBool; DLPack 0.6 headers lack the name, not the value.
inline constexpr uint8_t kDLBoolTypeCode = 6;

/// The DLPack dtype of a Kiln dtype (bool as DLPack 0.8's kDLBool).
DLDataType to_dlpack(DType dtype) noexcept;
/// The Kiln dtype of a DLPack dtype; {kDLUInt, 8, 1} reads as bool too.
std::optional<DType> dtype_from_dlpack(DLDataType dtype) noexcept;
/// "f32", "bf16", or DLPack's own spelling ("uint16", "float32x4") for types
/// Kiln does not have.
std::string dlpack_dtype_name(DLDataType dtype);

/// A DLTensor over the caller's data: owns its shape and strides, borrows the data.
class TensorView {
 public:
  /// Contiguous, on the CPU.
  /// @throws Error(invalid_argument) for a rank above kMaxTensorRank. `{}` is rank 0 (one element).
  TensorView(void* data, DType dtype, std::initializer_list<int64_t> shape);
  /// Empty strides mean contiguous (DLTensor::strides == NULL).
  /// A view of any layout and device (`{kDLCUDA, ordinal}` for CUDA memory).
  /// @throws Error(invalid_argument) for a rank above kMaxTensorRank, or strides of
  /// another rank.
  TensorView(void* data, DType dtype, std::span<const int64_t> shape,
             std::span<const int64_t> strides = {}, DLDevice device = {kDLCPU, 0});
  /// Copies the shape and strides; the data stays the caller's.
  /// @throws Error(invalid_argument) for a rank outside [0, 8] or a NULL shape.
  static TensorView from_dlpack(const DLTensor& tensor);

  /// Copies the view (its own shape and strides); the data stays shared.
  TensorView(const TensorView& other) noexcept;
  /// Copies the view, as the copy constructor.
  TensorView& operator=(const TensorView& other) noexcept;

  /// The DLTensor, valid while this TensorView lives: what Graph::call takes.
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
