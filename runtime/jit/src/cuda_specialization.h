// A CUDA specialization the JIT compiled with NVRTC: one cubin per kernel,
// loaded into the package's CUDA launcher (the device's primary context) and
// launched there with the plan lowering produced.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kiln/compiler/cuda_codegen.h"
#include "kiln/jit.h"

namespace kiln::jit::detail {

class CudaSpecialization final : public JitSpecialization {
 public:
  // Loads every cubin through `launcher` on device `ordinal`. Throws what
  // CudaKernelLauncher::load_function throws.
  CudaSpecialization(compiler::CudaLoweredGraph plan, std::vector<std::vector<std::byte>> cubins,
                     CudaKernelLauncher& launcher, int ordinal, size_t symbol_count,
                     std::string graph, std::string target, const std::string& label);

  std::span<const uint8_t> specialization() const noexcept override { return specialization_fb; }
  void run(const JitCall& call) const override;

  const compiler::CudaLoweredGraph& plan() const noexcept { return plan_; }
  const std::vector<std::vector<std::byte>>& cubins() const noexcept { return cubins_; }
  const std::string& graph() const noexcept { return graph_; }
  const std::string& target() const noexcept { return target_; }  // "cuda:sm_90"

  // Target 0, kernels 0.. in plan order: an export renumbers both.
  std::vector<uint8_t> specialization_fb;

 private:
  compiler::CudaLoweredGraph plan_;
  std::vector<std::vector<std::byte>> cubins_;
  std::vector<void*> functions_;  // CUfunction per kernel
  // The package's launcher: its modules hold the functions, so a call
  // through another (even one at the same address, after the first died)
  // is refused.
  CudaKernelLauncher* launcher_;
  uint64_t launcher_id_;
  int ordinal_;
  size_t symbol_count_;
  std::string graph_;
  std::string target_;
};

}  // namespace kiln::jit::detail
