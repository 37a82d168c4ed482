// The generator as stages. run_generator() (generator.cpp) calls them in
// this order, each on what the ones before it gave, so a graph goes through
// each stage once:
//
//   GeneratorOptions, traced graphs
//     | prepare_inputs        parse the targets; canonicalize, sort, check the graphs
//     v
//   GeneratorInputs
//     | choose_graph_targets  which targets each graph is built for (op budgets)
//     | plan_specializations  each target's build; each graph's specializations
//     v                       (hot values, profiled shapes, the general one)
//   SpecializationPlan
//     | lower_for_target      per graph and target: codegen, keys, guards
//     v
//   LoweredTarget per graph and target
//     | assemble_package      number kernels and blobs: the manifest, the ninja build
//     v
//   PackageDraft
//     | build_with_ninja      compile; read the shared objects and cubins back
//     v
//   blobs
//     | pack                  provenance, write_package
//     v
//   package bytes
//     | write_package_outputs NAME.kiln, NAME.h, NAME.cpp, NAME_embed.S, NAME.d
//
// A dry run stops after assemble_package. A new kind of target is a new
// lowering inside lower_for_target; a new input kind, a new stage before
// plan_specializations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/cuda_codegen.h"
#include "kiln/compiler/generator.h"
#include "kiln/compiler/hash.h"
#include "kiln/compiler/ir.h"
#include "kiln/compiler/ninja_driver.h"
#include "kiln/compiler/package_writer.h"
#include "kiln/compiler/profile.h"

namespace kiln::compiler {

// ---- prepare_inputs ----

struct GeneratorInputs {
  std::vector<TargetSpec> targets;  // in --targets order: manifest target i is targets[i]
  std::vector<ir::Graph> graphs;    // canonical, sorted by name
};

// Takes the options' name and targets and the traced graphs; gives the
// targets parsed and the graphs canonical and sorted. Throws
// std::invalid_argument for no name, no target, a target given twice, no
// graph, a graph declared twice, and a symbol no input uses.
GeneratorInputs prepare_inputs(const GeneratorOptions& options,
                               const std::vector<ir::Graph>& traced);

// ---- choose_graph_targets ----

struct GraphTargetChoice {
  // Per graph (GeneratorInputs::graphs order): indexes into
  // GeneratorInputs::targets, ascending.
  std::vector<std::vector<size_t>> targets_of_graph;
  // A graph left off a target above its op budget, or built above it.
  std::vector<std::string> warnings;
};

// Takes the inputs and GRAPH_TARGETS, the op budgets; gives the targets each
// graph is built for: those GRAPH_TARGETS names for it (else all), less
// those its declaration leaves out, less those whose op budget it exceeds
// unless GRAPH_TARGETS or the declaration names them. Throws
// std::invalid_argument for a GRAPH_TARGETS entry that names no graph or a
// target the package lacks, and for a graph left with no target.
GraphTargetChoice choose_graph_targets(const GeneratorInputs& inputs,
                                       const GeneratorOptions& options);

// ---- plan_specializations ----

// How one target's code is built: its ninja build unit and the flags that
// are also part of every key's options component.
struct TargetBuild {
  TargetSpec target;
  std::string build_name;                  // "cpu-x86-64-v3", "cuda-sm_90"
  std::vector<std::string> compile_flags;  // clang++ or nvcc flags
  bool ptx = false;                        // CUDA: the newest arch, which also ships PTX
};

struct PlannedGraph {
  size_t ops = 0;
  std::vector<size_t> targets;  // as GraphTargetChoice::targets_of_graph
  // enumerate_specializations(): the same on every target of the graph
  std::vector<ir::SymbolValues> specializations;
};

struct SpecializationPlan {
  std::vector<TargetBuild> targets;  // one per GeneratorInputs::targets
  std::vector<PlannedGraph> graphs;  // one per GeneratorInputs::graphs
  // the choice's warnings, then the profiles'
  std::vector<std::string> warnings;
};

// Takes the inputs, the chosen targets, the profiled shapes
// (read_profiled_shapes() of the same graphs) and whether graphs get their
// general specialization; gives what to build. Throws std::invalid_argument
// for a graph whose hot values give too many specializations.
SpecializationPlan plan_specializations(const GeneratorInputs& inputs, GraphTargetChoice chosen,
                                        const ProfiledShapes& profiled, bool general);

// ---- lower_for_target ----

// The compilers that build the package, named in every key.
struct Toolchain {
  std::vector<std::string> compilers;  // clang++'s, then nvcc's version line: those that ran
  std::string identity;                // the key's compiler component
};

// Takes the compilers and the targets; runs each needed compiler's
// --version (none in a dry run, whose identity then names no compiler).
// Throws std::runtime_error when a needed compiler does not run.
Toolchain identify_toolchain(const GeneratorOptions& options,
                             const std::vector<TargetSpec>& targets);

// One specialization of a graph for a target, lowered.
struct LoweredSpecialization {
  // specialization_name(), then ",index32" and ",unaligned" for CUDA variants
  std::string name;
  ir::SymbolValues values;
  std::variant<CpuLoweredGraph, CudaLoweredGraph> code;
  std::vector<std::unique_ptr<fb::GuardT>> guards;
  Hash128 key;
  KeyComponents components;
};

struct LoweredTarget {
  size_t target = 0;  // index into SpecializationPlan::targets
  // The plan's specializations in order; for CUDA each as its variants:
  // index32 before not, aligned16 before unaligned, where they differ.
  std::vector<LoweredSpecialization> specializations;
};

// Takes a graph, its planned specializations, a target's build (its flags
// key the code), the toolchain and the user tag; gives every specialization
// lowered for the target, with its key (the options component covers the
// flags and the kernels' text) and guards. Kernel entries are
// kiln_<graph>_<16 hex digits of the key before its options>_k<group>.
LoweredTarget lower_for_target(const ir::Graph& g,
                               const std::vector<ir::SymbolValues>& specializations,
                               const TargetBuild& target, size_t target_index,
                               const Toolchain& toolchain, const std::string& tag);

// ---- assemble_package ----

// Which built file becomes a blob.
struct BlobSource {
  fb::BlobKind kind = fb::BlobKind::CpuSharedObject;
  uint32_t target = 0;  // manifest target
  size_t build = 0;     // index into NinjaBuildRequest::libraries (CPU) or ::cuda
  size_t source = 0;    // CUDA: index into the build's sources
};

struct PackageDraft {
  // targets, graphs with their specializations, kernels; no blobs or
  // provenance yet
  fb::ManifestT manifest;
  // a shared library per CPU target, a CUDA build per CUDA target, with
  // every kernel's source; the tools and work directory are left to the caller
  NinjaBuildRequest build;
  // Blob i of the package: a shared object per CPU target in target order,
  // then per CUDA kernel its cubin and, for the PTX target, its PTX.
  std::vector<BlobSource> blobs;
  Hash128 source_hash;  // of every key, in order (the provenance's)
  size_t specializations = 0;
};

// Takes the graphs, the plan and, per graph, its targets lowered (in the
// plan's target order); gives the package as it will be, less the built
// bytes. Kernels are numbered graph by graph, target by target.
PackageDraft assemble_package(const std::vector<ir::Graph>& graphs, const SpecializationPlan& plan,
                              std::vector<std::vector<LoweredTarget>> lowered);

// ---- build_with_ninja ----

// Takes the draft's build (with tools and work directory set) and blob
// list; runs ninja and gives each blob's bytes, in blob order. Throws
// CompileError when a kernel does not compile, std::runtime_error when
// ninja does not run or an output cannot be read.
std::vector<BlobInput> build_with_ninja(const NinjaBuildRequest& build,
                                        const std::vector<BlobSource>& blobs);

// ---- pack ----

// Takes the draft, its blobs' bytes and the toolchain; gives the package
// file's bytes, with provenance (Kiln version, compilers, each build's flags,
// the source hash). Deterministic: no timestamps.
std::vector<uint8_t> pack(PackageDraft draft, std::vector<BlobInput> blobs,
                          const Toolchain& toolchain);

// ---- write_package_outputs ----

// Takes the options' name, namespace and out_dir, the graphs and the package
// bytes; writes <name>.kiln, <name>.h (a function per graph), <name>.cpp,
// <name>_embed.S (which embeds the package) and <name>.d, each only when its
// bytes changed. Gives the package's path.
std::filesystem::path write_package_outputs(const GeneratorOptions& options,
                                            const std::vector<ir::Graph>& graphs,
                                            const std::vector<uint8_t>& package);

// "name(x: f32[n, 4]) -> (y: f32[n, 4])": the generated header's comment
// and `kiln-gen --list`.
std::string graph_signature(const ir::Graph& g);

}  // namespace kiln::compiler
