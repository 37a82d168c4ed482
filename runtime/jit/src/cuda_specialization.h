// A CUDA specialization the JIT compiled with NVRTC: one cubin per kernel,
// loaded into the package's CUDA launcher (the device's primary context) and
// launched there with the plan lowering produced. Library calls (gemms) run
// through the launcher's cuBLASLt, as a precompiled plan's do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kiln/compiler/cuda_codegen.h"
#include "kiln/jit.h"
#include "kiln/runtime_internal/gemm_plan.h"

namespace kiln::jit::detail {

class CudaSpecialization final : public JitSpecialization {
 public:
  // Loads every cubin through `launcher` on device `ordinal`. `gemms` is
  // cuda_gemms() of the stored plan: by launch, the gemm of a library call
  // (whose plan launch has kernel kNoKernel); empty when none is. Throws
  // what CudaKernelLauncher::load_function throws, or Error(internal) when
  // the gemms and the plan's launches disagree.
  CudaSpecialization(compiler::CudaLoweredGraph plan, std::vector<std::vector<std::byte>> cubins,
                     CudaKernelLauncher& launcher, int ordinal, size_t symbol_count,
                     std::string graph, std::string target, const std::string& label,
                     std::vector<std::optional<::kiln::detail::GemmProgram>> gemms = {});

  std::span<const uint8_t> specialization() const noexcept override { return specialization_fb; }
  void run(const JitCall& call) const override;

  const compiler::CudaLoweredGraph& plan() const noexcept { return plan_; }
  const std::vector<std::vector<std::byte>>& cubins() const noexcept { return cubins_; }
  const std::string& graph() const noexcept { return graph_; }
  const std::string& target() const noexcept { return target_; }  // "cuda:sm_90"

  // Target 0, kernels 0.. in plan order: an export renumbers both.
  std::vector<uint8_t> specialization_fb;

 private:
  void run_gemm(const ::kiln::detail::GemmProgram& gemm, const std::vector<uint32_t>& operands,
                const std::vector<void*>& buffers, const JitCall& call,
                const std::vector<int64_t>& values, void* workspace, size_t workspace_bytes,
                const std::string& label) const;

  compiler::CudaLoweredGraph plan_;
  std::vector<std::vector<std::byte>> cubins_;
  std::vector<void*> functions_;  // CUfunction per kernel
  // By launch: its gemm when it is a library call, and "launch L (gemm)".
  std::vector<std::optional<::kiln::detail::GemmProgram>> gemms_;
  std::vector<std::string> gemm_labels_;
  bool has_gemm_ = false;
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
