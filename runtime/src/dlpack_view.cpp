#include <algorithm>
#include <string>

#include "kiln/error.h"
#include "kiln/tensor_view.h"

namespace kiln {

DLDataType to_dlpack(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32:
      return {kDLFloat, 32, 1};
    case DType::f16:
      return {kDLFloat, 16, 1};
    case DType::bf16:
      return {kDLBfloat, 16, 1};
    case DType::f64:
      return {kDLFloat, 64, 1};
    case DType::i32:
      return {kDLInt, 32, 1};
    case DType::i64:
      return {kDLInt, 64, 1};
    case DType::boolean:
      return {kDLBoolTypeCode, 8, 1};
  }
  return {kDLOpaqueHandle, 0, 0};
}

std::optional<DType> dtype_from_dlpack(DLDataType dtype) noexcept {
  if (dtype.lanes != 1) return std::nullopt;
  switch (dtype.code) {
    case kDLFloat:
      if (dtype.bits == 32) return DType::f32;
      if (dtype.bits == 16) return DType::f16;
      if (dtype.bits == 64) return DType::f64;
      return std::nullopt;
    case kDLBfloat:
      return dtype.bits == 16 ? std::optional(DType::bf16) : std::nullopt;
    case kDLInt:
      if (dtype.bits == 32) return DType::i32;
      if (dtype.bits == 64) return DType::i64;
      return std::nullopt;
    case kDLBoolTypeCode:
    // Producers that predate kDLBool (DLPack < 0.8) spell bool as uint8.
    case kDLUInt:
      return dtype.bits == 8 ? std::optional(DType::boolean) : std::nullopt;
    default:
      return std::nullopt;
  }
}

std::string dlpack_dtype_name(DLDataType dtype) {
  if (auto known = dtype_from_dlpack(dtype); known && dtype.code != kDLUInt) {
    return std::string(dtype_name(*known));
  }
  std::string name;
  switch (dtype.code) {
    case kDLInt:
      name = "int";
      break;
    case kDLUInt:
      name = "uint";
      break;
    case kDLFloat:
      name = "float";
      break;
    case kDLBfloat:
      name = "bfloat";
      break;
    case kDLBoolTypeCode:
      name = "bool";
      break;
    case kDLComplex:
      name = "complex";
      break;
    case kDLOpaqueHandle:
      name = "opaque";
      break;
    default:
      name = "code";
      name += std::to_string(dtype.code);
      name += '_';
      break;
  }
  name += std::to_string(dtype.bits);
  if (dtype.lanes != 1) {
    name += 'x';
    name += std::to_string(dtype.lanes);
  }
  return name;
}

TensorView::TensorView(void* data, DType dtype, std::initializer_list<int64_t> shape)
    : TensorView(data, dtype, std::span<const int64_t>(shape.begin(), shape.size())) {}

TensorView::TensorView(void* data, DType dtype, std::span<const int64_t> shape,
                       std::span<const int64_t> strides, DLDevice device) {
  if (shape.size() > kMaxTensorRank) {
    throw Error(
        ErrorCode::invalid_argument,
        "kiln::TensorView: rank " + std::to_string(shape.size()) + " exceeds the maximum of 8");
  }
  if (!strides.empty() && strides.size() != shape.size()) {
    throw Error(ErrorCode::invalid_argument, "kiln::TensorView: " + std::to_string(strides.size()) +
                                                 " strides for rank " +
                                                 std::to_string(shape.size()));
  }
  std::copy(shape.begin(), shape.end(), shape_);
  std::copy(strides.begin(), strides.end(), strides_);
  has_strides_ = !strides.empty();
  tensor_.data = data;
  tensor_.device = device;
  tensor_.ndim = static_cast<int32_t>(shape.size());
  tensor_.dtype = to_dlpack(dtype);
  tensor_.byte_offset = 0;
  point_into_self();
}

TensorView TensorView::from_dlpack(const DLTensor& tensor) {
  if (tensor.ndim < 0 || tensor.ndim > kMaxTensorRank) {
    throw Error(ErrorCode::invalid_argument,
                "kiln::TensorView: rank " + std::to_string(tensor.ndim) + " is not in [0, 8]");
  }
  if (tensor.ndim > 0 && tensor.shape == nullptr) {
    throw Error(ErrorCode::invalid_argument, "kiln::TensorView: DLTensor has a NULL shape");
  }
  TensorView view;
  view.tensor_ = tensor;
  std::copy_n(tensor.shape, tensor.ndim, view.shape_);
  view.has_strides_ = tensor.strides != nullptr;
  if (view.has_strides_) std::copy_n(tensor.strides, tensor.ndim, view.strides_);
  view.point_into_self();
  return view;
}

TensorView::TensorView(const TensorView& other) noexcept
    : tensor_(other.tensor_), has_strides_(other.has_strides_) {
  std::copy(std::begin(other.shape_), std::end(other.shape_), shape_);
  std::copy(std::begin(other.strides_), std::end(other.strides_), strides_);
  point_into_self();
}

TensorView& TensorView::operator=(const TensorView& other) noexcept {
  if (this == &other) return *this;
  tensor_ = other.tensor_;
  has_strides_ = other.has_strides_;
  std::copy(std::begin(other.shape_), std::end(other.shape_), shape_);
  std::copy(std::begin(other.strides_), std::end(other.strides_), strides_);
  point_into_self();
  return *this;
}

void TensorView::point_into_self() noexcept {
  tensor_.shape = shape_;
  tensor_.strides = has_strides_ ? strides_ : nullptr;
}

}  // namespace kiln
