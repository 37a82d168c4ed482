// A CPU specialization the JIT compiled with clang++ (or loaded from its disk
// cache): the shared object loaded from memory, its resolved kernels and the
// launch plan lowering produced, run through the package's CPU launcher.
// What an export needs stays with it: the shared object's bytes and the
// kiln.fb.Specialization (guards, plan, key) the runtime adopted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/abi/cpu_kernel.h"
#include "kiln/compiler/cpu_codegen.h"
#include "kiln/jit.h"
#include "kiln/runtime_internal/cpu_module.h"

namespace kiln::jit::detail {

struct CpuSpecialization final : JitSpecialization {
  std::unique_ptr<::kiln::detail::CpuModule> module;
  std::vector<KilnCpuKernelFn> kernels;
  compiler::CpuLoweredGraph plan;
  size_t symbol_count = 0;
  std::string graph;
  std::string target;  // "cpu:x86-64-v3"
  std::vector<std::byte> image;
  // Target 0, kernels 0.. in plan order: an export renumbers both.
  std::vector<uint8_t> specialization_fb;

  std::span<const uint8_t> specialization() const noexcept override { return specialization_fb; }
  void run(const JitCall& call) const override;
};

}  // namespace kiln::jit::detail
