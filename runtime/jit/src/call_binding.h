// Checks a call's tensors against the graph's signature and binds each
// symbol to the size the call passes: the static values the JIT compiles for.
#pragma once

#include <cstddef>
#include <optional>
#include <span>

#include <dlpack/dlpack.h>

#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/ir.h"
#include "kiln/jit.h"

namespace kiln::jit::detail {

// nullopt when a tensor is not on `device` (kDLCPU or kDLCUDA). Throws
// Error(guard_mismatch) for what no compile can serve: a wrong dtype, rank or
// fixed size, a symbol bound to two sizes or outside its declared range, a
// non-contiguous or misaligned tensor; the message says expected and actual.
std::optional<ir::SymbolValues> bind_call(const ir::Graph& g,
                                          std::span<const DLTensor* const> inputs,
                                          std::span<const DLTensor* const> outputs,
                                          DLDeviceType device);

// The tensor of `call` that a plan's input or output buffer names. A plan
// may come from the disk cache: an index past the call's tensors is
// Error(internal) naming it, never read.
const DLTensor& plan_tensor(const compiler::PlanBuffer& buffer, const JitCall& call);

// A temp buffer's bytes at `values` (one element at least, so that every
// temp has an address of its own). A negative numel or a byte count past
// size_t is Error(internal), never a short allocation.
size_t temp_bytes(const compiler::PlanBuffer& buffer, const ir::SymbolValues& values);

// The rule a package's plans keep (docs/package-format.md, "Launch plan
// sizes"), for a JIT plan at `values`: no launch has more work items than
// the largest buffer it binds has elements. Error(internal) naming the
// launch otherwise, before any kernel runs.
void check_work_items(const compiler::CpuLoweredGraph& plan, const JitCall& call,
                      const ir::SymbolValues& values);

}  // namespace kiln::jit::detail
