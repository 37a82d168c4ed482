// The generator's lowering stage: each planned specialization of a graph
// through a target's codegen, keyed and guarded (generator_stages.h).
#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/compiler/generator_stages.h"
#include "kiln/compiler/index_extents.h"
#include "kiln/compiler/manifest_builder.h"
#include "kiln/support/tool_version.h"

namespace kiln::compiler {
namespace {

constexpr int kDLCPU = 1;   // DLDeviceType
constexpr int kDLCUDA = 2;  // DLDeviceType

std::string compiler_identity(const std::string& tool, support::VersionLine line,
                              const char* needed_for) {
  try {
    return support::tool_version(tool, line);
  } catch (const support::ToolVersionError& e) {
    throw std::runtime_error(std::string(e.what()) + ":\n" + e.output() + "\nkiln: " + needed_for);
  } catch (const support::ProcessError& e) {
    throw std::runtime_error(std::string(e.what()) + "\nkiln: " + needed_for);
  }
}

// Entry names only need to be unique in the package: they come from the key
// before lowering.
std::string entry_prefix(const ir::Graph& g, const KeyComponents& components) {
  return "kiln_" + g.name + "_" + combine_key(components).hex().substr(0, 16);
}

// The key must change whenever the generated code does, also when only the
// codegen changed, so its options component covers the flags and the
// kernels' text.
template <typename Kernels>
Hash128 finish_key(KeyComponents& components, const std::string& options, const Kernels& kernels) {
  std::string code = options;
  for (const auto& k : kernels) code += '\n' + k.source;
  components.options = hash_string(code);
  return combine_key(components);
}

std::string with_flags(std::string options, const std::vector<std::string>& flags) {
  for (const auto& flag : flags) options += ' ' + flag;
  return options;
}

LoweredSpecialization lower_cpu_specialization(const ir::Graph& g, const ir::SymbolValues& values,
                                               const TargetBuild& target,
                                               const Toolchain& toolchain, const std::string& tag) {
  const std::string options = with_flags(kCpuCodegenVersion, target.compile_flags);
  KeyComponents components =
      key_components(g, KeyInputs{target.target.name, options, toolchain.identity, tag, values});
  CpuCodegenOptions co;
  co.entry_prefix = entry_prefix(g, components);
  CpuLoweredGraph lowered = lower_cpu(g, values, co);
  const Hash128 key = finish_key(components, options, lowered.kernels);
  return LoweredSpecialization{specialization_name(g, values),           values, std::move(lowered),
                               specialization_guards(g, values, kDLCPU), key,    components};
}

// CUDA: a variant whose kernels move 16-byte vectors, guarded on 16-byte
// alignment; for the general specialization also one for any
// element-aligned pointer, so an odd view still runs precompiled code.
// Without vectors the two are the same code. Before those, for a general
// specialization with symbolic sizes, the same pair indexing with int,
// guarded on every index extent being small; where the declared ranges keep
// every extent small, only that pair.
void lower_cuda_specialization(const ir::Graph& g, const ir::SymbolValues& values,
                               const TargetBuild& target, const Toolchain& toolchain,
                               const std::string& tag, std::vector<LoweredSpecialization>& out) {
  const bool general = std::all_of(values.begin(), values.end(), [](int64_t v) { return v < 0; });
  const int arch = std::stoi(target.target.arch.substr(3));
  std::vector<bool> index32_variants = {false};
  std::vector<SizeExpr> extents;
  if (general) {
    extents = index_extents(g, values, lower_cuda(g, values, CudaCodegenOptions{}).buffers);
    bool symbolic = false, fits = true, always = true;
    for (const SizeExpr& e : extents) {
      symbolic = symbolic || !e.is_constant();
      const std::optional<int64_t> highest = max_over_ranges(g, values, e);
      if (e.is_constant() && e.evaluate({}) >= kCudaInt32IndexLimit) fits = false;
      always = always && highest && *highest < kCudaInt32IndexLimit;
    }
    if (symbolic && fits) {
      index32_variants = always ? std::vector<bool>{true} : std::vector<bool>{true, false};
    }
  }
  for (const bool index32 : index32_variants) {
    for (const bool aligned : {true, false}) {
      std::string options = kCudaCodegenVersion;
      options += aligned ? " aligned16" : " unaligned";
      if (index32) options += " index32";
      options = with_flags(std::move(options), target.compile_flags);
      KeyComponents components = key_components(
          g, KeyInputs{target.target.name, options, toolchain.identity, tag, values});
      CudaCodegenOptions co;
      co.entry_prefix = entry_prefix(g, components);
      co.aligned16 = aligned;
      co.index32 = index32;
      CudaLoweredGraph lowered = lower_cuda(g, values, co);
      const Hash128 key = finish_key(components, options, lowered.kernels);
      auto guards =
          specialization_guards(g, values, kDLCUDA, lowered.vectorized ? kCudaVectorAlignment : 1);
      if (index32) guards.push_back(index_width_guard(extents, kCudaInt32IndexLimit));
      guards.push_back(cuda_arch_guard(arch, target.ptx));
      const bool vectorized = lowered.vectorized;
      out.push_back(
          LoweredSpecialization{specialization_name(g, values) + (index32 ? ",index32" : "") +
                                    (aligned ? "" : ",unaligned"),
                                values, std::move(lowered), std::move(guards), key, components});
      if (!vectorized || !general) break;
    }
  }
}

}  // namespace

Toolchain identify_toolchain(const GeneratorOptions& options,
                             const std::vector<TargetSpec>& targets) {
  const bool any_cpu = std::any_of(targets.begin(), targets.end(), [](auto& t) { return !t.cuda; });
  const bool any_cuda = std::any_of(targets.begin(), targets.end(), [](auto& t) { return t.cuda; });
  // A dry run runs no compiler, not even for its version.
  const std::string cxx_id =
      any_cpu && !options.dry_run
          ? compiler_identity(options.cxx, support::VersionLine::first,
                              "a C++ compiler (clang++) is needed for CPU targets")
          : std::string();
  const std::string nvcc_id =
      any_cuda && !options.dry_run
          ? compiler_identity(options.nvcc, support::VersionLine::last,
                              "nvcc (the CUDA toolkit) is needed for CUDA targets")
          : std::string();
  Toolchain toolchain;
  if (any_cpu && !options.dry_run) toolchain.compilers.push_back(cxx_id);
  if (any_cuda && !options.dry_run) toolchain.compilers.push_back(nvcc_id);
  toolchain.identity = std::string("kiln ") + KILN_VERSION + "; " + kCpuCodegenVersion + "; " +
                       kCudaCodegenVersion + "; " + cxx_id + "; " + nvcc_id;
  return toolchain;
}

LoweredTarget lower_for_target(const ir::Graph& g,
                               const std::vector<ir::SymbolValues>& specializations,
                               const TargetBuild& target, size_t target_index,
                               const Toolchain& toolchain, const std::string& tag) {
  LoweredTarget lowered{target_index, {}};
  for (const ir::SymbolValues& values : specializations) {
    if (target.target.cuda) {
      lower_cuda_specialization(g, values, target, toolchain, tag, lowered.specializations);
    } else {
      lowered.specializations.push_back(
          lower_cpu_specialization(g, values, target, toolchain, tag));
    }
  }
  return lowered;
}

}  // namespace kiln::compiler
