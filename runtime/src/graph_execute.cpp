// Execution: a selected specialization's plan run for one call: temps
// placed in one workspace, CPU launches on the thread pool, CUDA launches and
// gemms on the caller's stream; a JIT specialization runs its own code.
#include <algorithm>
#include <new>
#include <optional>
#include <string>

#include "device_workspace.h"
#include "gemm_plan.h"
#include "graph_impl.h"
#include "text.h"

namespace kiln {

using detail::CallDevice;
using detail::cat;
using detail::CompiledBuffer;
using detail::CompiledLaunch;
using detail::CompiledSpecialization;
using detail::JitEntry;

namespace {

constexpr size_t kTempAlignment = 64;
// cuBLASLt's workspace, after the temps in the call's one allocation.
constexpr size_t kGemmWorkspaceAlignment = 256;

// Temp buffers of the calling thread, grown as needed and kept: concurrent
// calls never share one, and a warm thread allocates nothing.
class Workspace {
 public:
  ~Workspace() { release(); }
  std::byte* reserve(size_t bytes) {
    if (bytes > capacity_) {
      release();
      data_ = static_cast<std::byte*>(::operator new(bytes, std::align_val_t(kTempAlignment)));
      capacity_ = bytes;
    }
    return data_;
  }

 private:
  void release() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t(kTempAlignment));
    data_ = nullptr;
    capacity_ = 0;
  }
  std::byte* data_ = nullptr;
  size_t capacity_ = 0;
};

thread_local Workspace thread_workspace;

size_t round_up(size_t value, size_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

}  // namespace

namespace {

// "n=8, m=3": a call's binding, for a message.
std::string binding_text(const detail::GraphNames& names, const int64_t* symbols) {
  std::string text;
  for (size_t s = 0; s < names.symbols.size(); ++s) {
    text += cat(s == 0 ? "" : ", ", names.symbols[s], "=", symbols[s]);
  }
  return text.empty() ? "no symbols" : text;
}

[[noreturn]] [[gnu::cold]] void throw_plan_size(const std::string& graph,
                                                const CompiledSpecialization& spec,
                                                const detail::GraphNames& names,
                                                const int64_t* symbols, const std::string& what) {
  throw PackageError(ErrorCode::package_corrupt,
                     cat("kiln: graph '", graph, "' specialization '", spec.name, "': ", what,
                         " at ", binding_text(names, symbols),
                         ": the package's launch plan does not fit the call's buffers"));
}

}  // namespace

void Graph::Impl::check_plan_sizes(const CompiledSpecialization& spec,
                                   const DLTensor* const* tensors, const int64_t* symbols,
                                   const int64_t* temp_numel) const {
  int64_t numel[kMaxPlanBuffers];
  for (size_t i = 0; i < spec.buffers.size(); ++i) {
    const CompiledBuffer& b = spec.buffers[i];
    const int32_t tensor = spec.buffer_tensor[i];
    if (tensor < 0) {
      numel[i] = temp_numel[i];  // place_buffers() refused a negative or oversized one
      continue;
    }
    numel[i] = detail::element_count(*tensors[tensor]);
    if (b.has_numel) {
      const int64_t declared = b.numel.evaluate(symbols, "buffer numel");
      if (declared != numel[i]) {
        throw_plan_size(name, spec, names, symbols,
                        cat("buffer ", i, " (tensor '", names.tensors[static_cast<size_t>(tensor)],
                            "') declares ", declared, " elements, the tensor has ", numel[i]));
      }
    }
  }
  if (spec.cuda) return;
  for (size_t l = 0; l < spec.launches.size(); ++l) {
    const CompiledLaunch& launch = spec.launches[l];
    const int64_t work = launch.work_items.evaluate(symbols, "work_items");
    int64_t largest = 0;
    for (uint32_t b : launch.buffers) largest = std::max(largest, numel[b]);
    if (work < 0 || work > largest) {
      throw_plan_size(name, spec, names, symbols,
                      cat("launch ", l, " has ", work, " work items, expected 0 to ", largest,
                          ", the elements of the largest buffer it binds"));
    }
  }
}

void Graph::Impl::resolve_kernels() {
  std::call_once(kernels_once, [&] {
    for (uint32_t index : cpu_candidates) {
      for (CompiledLaunch& launch : specializations[index].launches) {
        launch.fn = package->cpu.kernel(launch.kernel);
      }
    }
  });
}

size_t Graph::Impl::place_buffers(const CompiledSpecialization& spec,
                                  const DLTensor* const* tensors, const int64_t* symbols,
                                  void** buffers, size_t* temp_offsets, int64_t* temp_numel) const {
  for (size_t i = 0; i < spec.buffer_tensor.size(); ++i) {
    const int32_t tensor = spec.buffer_tensor[i];
    if (tensor >= 0) {
      buffers[i] = static_cast<std::byte*>(tensors[tensor]->data) + tensors[tensor]->byte_offset;
    }
  }
  size_t temp_total = 0;
  for (uint32_t i : spec.temps) {
    const CompiledBuffer& b = spec.buffers[i];
    const int64_t numel = b.numel.evaluate(symbols, "temp numel");
    const size_t offset = round_up(temp_total, kTempAlignment);
    size_t bytes = 0;
    if (numel < 0 || __builtin_mul_overflow(static_cast<size_t>(numel), b.element_size, &bytes) ||
        __builtin_add_overflow(offset, bytes, &temp_total)) {
      throw Error(ErrorCode::invalid_argument, cat("kiln: graph '", name, "': temp buffer of ",
                                                   numel, " elements is negative or too large"));
    }
    temp_offsets[i] = offset;
    temp_numel[i] = numel;
  }
  return temp_total;
}

void Graph::Impl::run(const CompiledSpecialization& spec, const DLTensor* const* tensors,
                      const int64_t* symbols) {
  resolve_kernels();
  void* buffers[kMaxPlanBuffers];
  size_t temp_offsets[kMaxPlanBuffers];
  int64_t temp_numel[kMaxPlanBuffers];
  const size_t temp_total =
      place_buffers(spec, tensors, symbols, buffers, temp_offsets, temp_numel);
  if (!spec.sizes_checked_at_open) check_plan_sizes(spec, tensors, symbols, temp_numel);
  if (spec.has_temps) {
    std::byte* temp_base = thread_workspace.reserve(temp_total);
    for (uint32_t i : spec.temps) buffers[i] = temp_base + temp_offsets[i];
  }
  void* arguments[kMaxLaunchBuffers];
  for (const CompiledLaunch& launch : spec.launches) {
    for (size_t a = 0; a < launch.buffers.size(); ++a) arguments[a] = buffers[launch.buffers[a]];
    const KilnCpuKernelArgs args{arguments, symbols};
    const int64_t work = launch.work_items.evaluate(symbols, "work_items");
    const int64_t cost = launch.item_cost.evaluate(symbols, "item_cost");
    // launch() returns when every chunk has run: the barrier between launches.
    package->cpu.launch(launch.fn, args, work, cost);
  }
}

void Graph::Impl::run_cuda(const CompiledSpecialization& spec, const DLTensor* const* tensors,
                           int64_t* symbols, const CallDevice& device, void* stream) {
  void* buffers[kMaxPlanBuffers];
  size_t temp_offsets[kMaxPlanBuffers];
  int64_t temp_numel[kMaxPlanBuffers];
  const size_t temp_total =
      place_buffers(spec, tensors, symbols, buffers, temp_offsets, temp_numel);
  if (!spec.sizes_checked_at_open) check_plan_sizes(spec, tensors, symbols, temp_numel);
  detail::CudaLauncher& cuda = package->cuda;
  const detail::CudaLauncher::ContextScope context = cuda.enter(device.ordinal);
  // One allocation: the temps, then cuBLASLt's workspace when a launch is a
  // gemm (its gemms run one after another on the stream, so they share it).
  size_t gemm_offset = 0;
  size_t gemm_bytes = 0;
  size_t workspace_total = temp_total;
  if (spec.has_gemm) {
    gemm_bytes = cuda.gemm_workspace_bytes(device.ordinal);
    gemm_offset = round_up(temp_total, kGemmWorkspaceAlignment);
    if (__builtin_add_overflow(gemm_offset, gemm_bytes, &workspace_total)) {
      throw Error(ErrorCode::invalid_argument,
                  cat("kiln: graph '", name, "': the call's workspace is too large"));
    }
  }
  std::optional<detail::DeviceWorkspace> workspace;
  if (spec.has_temps || spec.has_gemm) {
    workspace.emplace(cuda, device.ordinal, workspace_total, stream);
    for (uint32_t i : spec.temps) buffers[i] = workspace->data() + temp_offsets[i];
  }
  // Kernel parameters (cuda_kernel.h): the buffers' pointers, then every
  // symbol as an int64_t; the driver reads them through these addresses
  // during cuLaunchKernel. Stream order is the barrier between launches.
  void* params[kMaxLaunchBuffers + kMaxSymbols];
  for (const CompiledLaunch& launch : spec.launches) {
    if (launch.gemm) {
      run_gemm(spec, launch, tensors, symbols, buffers, workspace->data() + gemm_offset, gemm_bytes,
               device, stream);
      continue;
    }
    void* const function = cuda.function(device.ordinal, launch.kernel);
    size_t p = 0;
    for (uint32_t b : launch.buffers) params[p++] = &buffers[b];
    for (size_t s = 0; s < symbol_count; ++s) params[p++] = &symbols[s];
    detail::CudaLauncher::LaunchDims dims{};
    for (size_t d = 0; d < 3; ++d) {
      const int64_t blocks = launch.grid[d].evaluate(symbols, "grid");
      const int64_t limit = d == 0 ? int64_t{0x7fffffff} : int64_t{65535};
      if (blocks < 0 || blocks > limit) {
        throw Error(ErrorCode::invalid_argument,
                    cat("kiln: graph '", name, "': kernel '", launch.kernel_name, "' needs ",
                        blocks, " blocks in grid dimension ", d, "; CUDA allows at most ", limit));
      }
      dims.grid[d] = static_cast<uint32_t>(blocks);
      dims.block[d] = launch.block[d];
    }
    dims.shared_bytes = launch.shared_bytes;
    cuda.launch(device.ordinal, function, dims, stream, params, name, launch.kernel_name);
  }
}

void Graph::Impl::run_gemm(const CompiledSpecialization& spec, const CompiledLaunch& launch,
                           const DLTensor* const* tensors, const int64_t* symbols,
                           void* const* buffers, void* workspace, size_t workspace_bytes,
                           const CallDevice& device, void* stream) {
  const GemmProblem problem = launch.gemm->evaluate(symbols);
  auto operand = [&](size_t position, DType dtype) {
    const uint32_t b = launch.buffers[position];
    const CompiledBuffer& buffer = spec.buffers[b];
    const int64_t declared =
        buffer.has_numel ? buffer.numel.evaluate(symbols, "gemm buffer numel") : -1;
    const int32_t tensor = spec.buffer_tensor[b];
    return GemmOperand{buffers[b], detail::gemm_operand_elements(
                                       tensor >= 0 ? tensors[tensor] : nullptr, declared, dtype)};
  };
  GemmOperands operands;
  operands.a = operand(0, problem.a_dtype);
  operands.b = operand(1, problem.b_dtype);
  operands.d = operand(2, problem.d_dtype);
  if (launch.buffers.size() > 3) operands.bias = operand(3, problem.d_dtype);
  operands.workspace = workspace;
  operands.workspace_bytes = workspace_bytes;
  package->cuda.run_gemm(device.ordinal, problem, operands, stream, name, launch.kernel_name);
}

void Graph::Impl::run_jit(const JitEntry& entry, std::span<const DLTensor* const> inputs,
                          std::span<const DLTensor* const> outputs, const int64_t* symbols,
                          const CallDevice& device, void* stream) {
  JitCall call{inputs, outputs, stream, symbols, &package->cpu, nullptr, 0};
  if (!device.cuda) {
    entry.jit->run(call);
    return;
  }
  call.cuda = &package->cuda;
  call.cuda_ordinal = device.ordinal;
  const detail::CudaLauncher::ContextScope context = package->cuda.enter(device.ordinal);
  entry.jit->run(call);
}

}  // namespace kiln
