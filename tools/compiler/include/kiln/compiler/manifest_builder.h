// Converts compiler structures into the package manifest's object API types.
// The IR half of a graph entry is kiln/compiler/ir_flatbuffers.h's.
#pragma once

#include <memory>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/cuda_codegen.h"
#include "kiln/compiler/hash.h"
#include "kiln/compiler/ir.h"
#include "kiln/compiler/ir_flatbuffers.h"

namespace kiln::compiler {

fb::Hash128 to_fb(const Hash128& h);
std::unique_ptr<fb::SizeExprT> to_fb(const SizeExpr& e);
std::unique_ptr<fb::KeyComponentsT> to_fb(const KeyComponents& k);

// graph_entry_ir() (graph name, symbols, input/output specs and IR) with
// the structure hash; no specializations yet.
std::unique_ptr<fb::GraphEntryT> graph_entry(const ir::Graph& g, const Hash128& structure);

// The guards that admit exactly the calls a specialization was compiled for:
// dtype, device, rank, each dim, symbol ranges (a point range for a static
// symbol), divisibility, contiguity and alignment (of each tensor's element
// size, or `alignment` bytes when larger), for inputs then outputs.
std::vector<std::unique_ptr<fb::GuardT>> specialization_guards(
    const ir::Graph& g, const ir::SymbolValues& static_values, int dl_device_type,
    int64_t alignment = 1);

// The CudaArch guard of a specialization built for sm_<arch>; `has_ptx`:
// its target also ships PTX, which runs on any newer device.
std::unique_ptr<fb::GuardT> cuda_arch_guard(int arch, bool has_ptx);

// The IndexWidth guard of a specialization whose kernels index with int:
// each extent below `limit`.
std::unique_ptr<fb::GuardT> index_width_guard(const std::vector<SizeExpr>& extents, int64_t limit);

// `kernel_base` is the manifest index of lowered.kernels[0].
std::unique_ptr<fb::LaunchPlanT> launch_plan(const CpuLoweredGraph& lowered, uint32_t kernel_base);
std::unique_ptr<fb::LaunchPlanT> launch_plan(const CudaLoweredGraph& lowered, uint32_t kernel_base);

// One specialization of a graph entry: its name, target, symbol values (-1:
// dynamic), guards, plan and key.
std::unique_ptr<fb::SpecializationT> specialization(std::string name, uint32_t target,
                                                    const ir::SymbolValues& values,
                                                    std::vector<std::unique_ptr<fb::GuardT>> guards,
                                                    std::unique_ptr<fb::LaunchPlanT> plan,
                                                    const Hash128& key,
                                                    const KeyComponents& components);

}  // namespace kiln::compiler
