// Checks a call's tensors against the graph's signature and binds each
// symbol to the size the call passes: the static values the JIT compiles for.
#pragma once

#include <optional>
#include <span>

#include <dlpack/dlpack.h>

#include "kiln/compiler/ir.h"

namespace kiln::jit::detail {

// nullopt when a tensor is not on `device` (kDLCPU or kDLCUDA). Throws
// Error(guard_mismatch) for what no compile can serve: a wrong dtype, rank or
// fixed size, a symbol bound to two sizes or outside its declared range, a
// non-contiguous or misaligned tensor; the message says expected and actual.
std::optional<ir::SymbolValues> bind_call(const ir::Graph& g,
                                          std::span<const DLTensor* const> inputs,
                                          std::span<const DLTensor* const> outputs,
                                          DLDeviceType device);

}  // namespace kiln::jit::detail
