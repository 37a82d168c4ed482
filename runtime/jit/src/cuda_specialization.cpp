#include "cuda_specialization.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "call_binding.h"
#include "kiln/abi/library_call.h"
#include "kiln/error.h"
#include "kiln/jit_launchers.h"
#include "kiln/runtime_internal/device_workspace.h"
#include "kiln/runtime_internal/gemm_plan.h"

namespace kiln::jit::detail {
namespace {

constexpr size_t kWorkspaceAlignment = 256;  // what the runtime's allocators give

size_t round_up(size_t value, size_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

}  // namespace

CudaSpecialization::CudaSpecialization(
    compiler::CudaLoweredGraph plan, std::vector<std::vector<std::byte>> cubins,
    CudaKernelLauncher& launcher, int ordinal, size_t symbol_count, std::string graph,
    std::string target, const std::string& label,
    std::vector<std::optional<::kiln::detail::GemmProgram>> gemms)
    : plan_(std::move(plan)),
      cubins_(std::move(cubins)),
      gemms_(std::move(gemms)),
      launcher_(&launcher),
      launcher_id_(launcher.instance_id()),
      ordinal_(ordinal),
      symbol_count_(symbol_count),
      graph_(std::move(graph)),
      target_(std::move(target)) {
  if (cubins_.size() != plan_.kernels.size()) {
    throw Error(ErrorCode::internal, "kiln: " + label + ": " + std::to_string(cubins_.size()) +
                                         " cubins for " + std::to_string(plan_.kernels.size()) +
                                         " kernels");
  }
  gemms_.resize(plan_.launches.size());
  for (size_t l = 0; l < plan_.launches.size(); ++l) {
    const bool library_call = plan_.launches[l].kernel == kNoKernel;
    if (library_call != gemms_[l].has_value() ||
        (!library_call && plan_.launches[l].kernel >= plan_.kernels.size())) {
      throw Error(ErrorCode::internal,
                  "kiln: " + label + ": launch " + std::to_string(l) + " names kernel " +
                      std::to_string(plan_.launches[l].kernel) + " of " +
                      std::to_string(plan_.kernels.size()) + (gemms_[l] ? " but is a gemm" : ""));
    }
    gemm_labels_.push_back(library_call ? "launch " + std::to_string(l) + " (gemm)" : "");
    has_gemm_ |= library_call;
  }
  for (size_t k = 0; k < plan_.kernels.size(); ++k) {
    uint32_t shared = 0;
    for (const compiler::CudaLaunch& l : plan_.launches) {
      if (l.kernel == k) shared = std::max(shared, l.shared_bytes);
    }
    functions_.push_back(
        launcher.load_function(ordinal, cubins_[k], plan_.kernels[k].entry.c_str(), shared, label));
  }
}

void CudaSpecialization::run(const JitCall& call) const {
  if (call.cuda == nullptr || call.cuda->instance_id() != launcher_id_ ||
      call.cuda_ordinal != ordinal_) {
    throw Error(ErrorCode::internal, "kiln: graph '" + graph_ +
                                         "': a JIT-compiled CUDA specialization ran on another "
                                         "package or device than it was loaded for");
  }
  const std::vector<int64_t> values(call.symbols, call.symbols + symbol_count_);
  std::vector<void*> buffers(plan_.buffers.size(), nullptr);
  std::vector<size_t> temp_offsets(plan_.buffers.size(), 0);
  size_t temp_total = 0;
  for (size_t b = 0; b < plan_.buffers.size(); ++b) {
    const compiler::PlanBuffer& pb = plan_.buffers[b];
    if (pb.role == compiler::BufferRole::temp) {
      temp_offsets[b] = round_up(temp_total, kWorkspaceAlignment);
      if (__builtin_add_overflow(temp_offsets[b], temp_bytes(pb, values), &temp_total)) {
        throw Error(ErrorCode::internal, "kiln: a JIT plan's temp buffers are too large");
      }
      continue;
    }
    const DLTensor& t = plan_tensor(pb, call);
    buffers[b] = static_cast<std::byte*>(t.data) + t.byte_offset;
  }
  // cuBLASLt's workspace after the temps, in the same allocation.
  size_t gemm_offset = 0;
  size_t gemm_bytes = 0;
  if (has_gemm_) {
    gemm_bytes = launcher_->gemm_workspace_bytes(ordinal_);
    gemm_offset = round_up(temp_total, kWorkspaceAlignment);
    temp_total = gemm_offset + gemm_bytes;
  }
  std::optional<kiln::detail::DeviceWorkspace> workspace;
  if (temp_total > 0) {
    workspace.emplace(*launcher_, ordinal_, temp_total, call.stream);
    for (size_t b = 0; b < plan_.buffers.size(); ++b) {
      if (plan_.buffers[b].role == compiler::BufferRole::temp) {
        buffers[b] = workspace->data() + temp_offsets[b];
      }
    }
  }
  // Kernel parameters (cuda_kernel.h): the buffers' pointers, then every
  // symbol as an int64_t, read through these addresses during the launch.
  std::vector<void*> params;
  for (size_t l = 0; l < plan_.launches.size(); ++l) {
    const compiler::CudaLaunch& launch = plan_.launches[l];
    if (gemms_[l]) {
      run_gemm(*gemms_[l], launch.buffers, buffers, call, values, workspace->data() + gemm_offset,
               gemm_bytes, gemm_labels_[l]);
      continue;
    }
    params.clear();
    for (uint32_t b : launch.buffers) params.push_back(&buffers[b]);
    for (const int64_t& v : values) params.push_back(const_cast<int64_t*>(&v));
    uint32_t grid[3];
    for (size_t d = 0; d < 3; ++d) {
      const int64_t blocks = launch.grid[d].evaluate(values);
      const int64_t limit = d == 0 ? int64_t{0x7fffffff} : int64_t{65535};
      if (blocks < 0 || blocks > limit) {
        throw Error(ErrorCode::invalid_argument,
                    "kiln: graph '" + graph_ + "': kernel '" + plan_.kernels[launch.kernel].entry +
                        "' needs " + std::to_string(blocks) + " blocks in grid dimension " +
                        std::to_string(d) + "; CUDA allows at most " + std::to_string(limit));
      }
      grid[d] = static_cast<uint32_t>(blocks);
    }
    launcher_->launch_kernel(ordinal_, functions_[launch.kernel], grid, launch.block.data(),
                             launch.shared_bytes, call.stream, params.data(), graph_,
                             plan_.kernels[launch.kernel].entry);
  }
}

void CudaSpecialization::run_gemm(const ::kiln::detail::GemmProgram& gemm,
                                  const std::vector<uint32_t>& operands,
                                  const std::vector<void*>& buffers, const JitCall& call,
                                  const std::vector<int64_t>& values, void* workspace,
                                  size_t workspace_bytes, const std::string& label) const {
  const GemmProblem problem = gemm.evaluate(call.symbols);
  // A tensor's buffer holds what the caller's tensor spans; a temp what
  // the plan sized it to.
  auto operand = [&](size_t position, DType dtype) {
    const uint32_t b = operands[position];
    const compiler::PlanBuffer& pb = plan_.buffers[b];
    const DLTensor* tensor = nullptr;
    int64_t declared = -1;
    if (pb.role == compiler::BufferRole::temp) {
      declared = pb.numel.evaluate(values);
    } else {
      tensor = &plan_tensor(pb, call);
    }
    return GemmOperand{buffers[b], ::kiln::detail::gemm_operand_elements(tensor, declared, dtype)};
  };
  GemmOperands o;
  o.a = operand(0, problem.a_dtype);
  o.b = operand(1, problem.b_dtype);
  o.d = operand(2, problem.d_dtype);
  if (operands.size() > 3) o.bias = operand(3, problem.d_dtype);
  o.workspace = workspace;
  o.workspace_bytes = workspace_bytes;
  launcher_->run_gemm(ordinal_, problem, o, call.stream, graph_, label);
}

}  // namespace kiln::jit::detail
