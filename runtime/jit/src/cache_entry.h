// What a disk-cache entry holds (entry format 2): the specialization as the
// runtime adopts it (a kiln.fb.Specialization: guards, launch plan, key),
// its kernels' entry names, and their code (one shared object, or one cubin
// per kernel). A hit needs no lowering: the key covers the graph, the sizes,
// the target, the codegen version and flags, the compiler and the tag, not
// the generated text, and the entry carries the plan that matches its own
// code, so it is consistent even across a codegen change that forgot its
// version bump.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/cuda_codegen.h"
#include "kiln/runtime_internal/gemm_plan.h"

namespace kiln::jit::detail {

struct CacheEntry {
  std::vector<uint8_t> specialization;  // a finished kiln.fb.Specialization
  std::vector<std::string> kernels;     // entry names, in the plan's kernel order
  std::vector<std::vector<std::byte>> code;
};

std::vector<std::byte> pack_entry(const CacheEntry& entry);
// nullopt when the payload does not parse, or its specialization fails the
// FlatBuffers verifier or names a kernel it does not list (a library call,
// kernel kNoKernel with its library_call, names none): a corrupt entry.
std::optional<CacheEntry> unpack_entry(std::span<const std::byte> payload);

// Whether the stored specialization is for a graph of `symbols` symbols:
// one value per symbol, and every size expression of its plan within them
// (so evaluating it reads no symbol the call did not bind); a library call
// must also pass the runtime's validate_library_call().
bool fits_graph(std::span<const uint8_t> specialization, size_t symbols);

// The plans back from the stored specialization: what running needs (the
// kernels' source text is not kept). A library call keeps kernel kNoKernel
// in the CUDA plan; its gemm is cuda_gemms()'. A CPU plan with a library
// call throws Error(internal) (no CPU target makes one): a corrupt entry.
compiler::CpuLoweredGraph cpu_plan(const fb::Specialization& spec,
                                   const std::vector<std::string>& kernels);
compiler::CudaLoweredGraph cuda_plan(const fb::Specialization& spec,
                                     const std::vector<std::string>& kernels);
// By launch of the plan: the gemm a library call runs, nullopt for a kernel.
// The specialization must have passed fits_graph().
std::vector<std::optional<::kiln::detail::GemmProgram>> cuda_gemms(const fb::Specialization& spec);

}  // namespace kiln::jit::detail
