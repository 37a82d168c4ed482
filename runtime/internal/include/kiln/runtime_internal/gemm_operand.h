// How many elements a gemm may touch at a plan buffer: what the plan
// declares, and never more than the caller's tensor behind it spans, so
// that neither a wrong plan nor a view the guards let through can make
// cuBLASLt read or write past the caller's memory.
#pragma once

#include <cstdint>

#include <dlpack/dlpack.h>

#include "kiln/dtype.h"

namespace kiln::detail {

// The bytes from data + byte_offset to the end of the tensor's last element
// (row-major when strides is NULL; only positive strides reach forward); 0
// without elements, -1 when that overflows int64.
int64_t tensor_span_bytes(const DLTensor& tensor) noexcept;

// Elements of `dtype` at the buffer: the smaller of `declared` (its plan
// numel; -1 when the plan gives none) and what `tensor` spans (nullptr: a
// temp, which holds what it declares). 0 when neither is known or the span
// overflows.
int64_t gemm_operand_elements(const DLTensor* tensor, int64_t declared, DType dtype) noexcept;

}  // namespace kiln::detail
