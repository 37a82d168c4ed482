// Binds a graph's symbols from a call's shapes alone, read against the
// graph's TensorSpec dims: what a call asked for, hit or miss, with no
// specialization's guards involved.
#pragma once

#include <cstdint>

#include <dlpack/dlpack.h>

#include "kiln/abi/kiln_package_generated.h"

namespace kiln::detail {

// `tensors` are the call's inputs then outputs, each non-NULL with a shape
// (the call validated them). Writes one value per symbol of `entry` to
// `values`. False when the shapes contradict the signature: a rank or a
// constant dim that differs, a symbol given two sizes, or a symbol that no
// tensor binds. Ranges and divisibility are not checked: a size outside
// them is still what the call asked for.
bool bind_symbols(const fb::GraphEntry& entry, const DLTensor* const* tensors, int64_t* values);

}  // namespace kiln::detail
