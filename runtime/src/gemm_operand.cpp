#include "gemm_operand.h"

#include <algorithm>

namespace kiln::detail {

int64_t tensor_span_bytes(const DLTensor& tensor) noexcept {
  for (int32_t d = 0; d < tensor.ndim; ++d) {
    if (tensor.shape[d] <= 0) return 0;
  }
  int64_t last = 0;  // index of the last element, in elements
  int64_t stride = 1;
  for (int32_t d = tensor.ndim - 1; d >= 0; --d) {
    const int64_t size = tensor.shape[d];
    const int64_t step = tensor.strides != nullptr ? tensor.strides[d] : stride;
    if (step > 0 && size > 1) {
      int64_t reach = 0;
      if (__builtin_mul_overflow(size - 1, step, &reach) ||
          __builtin_add_overflow(last, reach, &last)) {
        return -1;
      }
    }
    if (tensor.strides == nullptr && __builtin_mul_overflow(stride, size, &stride)) return -1;
  }
  const auto element = static_cast<int64_t>((tensor.dtype.bits * tensor.dtype.lanes + 7u) / 8u);
  int64_t bytes = 0;
  if (__builtin_add_overflow(last, 1, &last) || __builtin_mul_overflow(last, element, &bytes)) {
    return -1;
  }
  return bytes;
}

int64_t gemm_operand_elements(const DLTensor* tensor, int64_t declared, DType dtype) noexcept {
  if (tensor == nullptr) return std::max<int64_t>(declared, 0);
  const int64_t bytes = tensor_span_bytes(*tensor);
  if (bytes < 0) return 0;
  const int64_t spanned = bytes / dtype_size(dtype);
  return declared < 0 ? spanned : std::min(declared, spanned);
}

}  // namespace kiln::detail
