#include "call_binding.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/error.h"
#include "kiln/tensor_view.h"

namespace kiln::jit::detail {
namespace {

std::string dl_dtype_text(DLDataType t) {
  return "code " + std::to_string(t.code) + " bits " + std::to_string(t.bits) + " lanes " +
         std::to_string(t.lanes);
}

[[noreturn]] void mismatch(const ir::Graph& g, const std::string& tensor, const std::string& what,
                           const std::string& expected, const std::string& actual) {
  throw Error(ErrorCode::guard_mismatch, "kiln: graph '" + g.name + "': JIT cannot serve " +
                                             tensor + "." + what + ": expected " + expected +
                                             ", got " + actual);
}

}  // namespace

std::optional<ir::SymbolValues> bind_call(const ir::Graph& g,
                                          std::span<const DLTensor* const> inputs,
                                          std::span<const DLTensor* const> outputs,
                                          DLDeviceType device) {
  ir::SymbolValues values(g.symbols.size(), -1);
  struct Named {
    const DLTensor* tensor;
    const ir::Node* node;
    std::string name;
  };
  std::vector<Named> tensors;
  for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i) {
    tensors.push_back({inputs[i], &g.node(g.inputs[i]), g.node(g.inputs[i]).name});
  }
  for (size_t i = 0; i < g.outputs.size() && i < outputs.size(); ++i) {
    tensors.push_back({outputs[i], &g.node(g.outputs[i]), g.output_names[i]});
  }
  // The runtime checked the counts before the miss; a request built by hand
  // may not have.
  if (inputs.size() != g.inputs.size() || outputs.size() != g.outputs.size()) {
    throw Error(ErrorCode::invalid_argument,
                "kiln: graph '" + g.name + "': expected " + std::to_string(g.inputs.size()) +
                    " inputs and " + std::to_string(g.outputs.size()) + " outputs, got " +
                    std::to_string(inputs.size()) + " and " + std::to_string(outputs.size()));
  }
  for (const Named& t : tensors) {
    if (t.tensor->device.device_type != device) return std::nullopt;
  }
  // Bind from every tensor first, then check sizes, so an output's shape is
  // judged against the inputs' binding wherever a symbol first appears.
  for (const Named& t : tensors) {
    const DLTensor& dl = *t.tensor;
    const DLDataType want = to_dlpack(t.node->dtype);
    if (dl.dtype.code != want.code || dl.dtype.bits != want.bits || dl.dtype.lanes != want.lanes) {
      mismatch(g, t.name, "dtype", std::string(dtype_name(t.node->dtype)), dl_dtype_text(dl.dtype));
    }
    if (static_cast<size_t>(dl.ndim) != t.node->shape.size()) {
      mismatch(g, t.name, "rank", std::to_string(t.node->shape.size()), std::to_string(dl.ndim));
    }
    for (size_t d = 0; d < t.node->shape.size(); ++d) {
      const ir::Dim& dim = t.node->shape[d];
      const int64_t size = dl.shape[d];
      const std::string where = "shape[" + std::to_string(d) + "]";
      if (dim.is_constant()) {
        if (size != dim.value)
          mismatch(g, t.name, where, std::to_string(dim.value), std::to_string(size));
        continue;
      }
      const ir::SymbolDecl& s = g.symbols[static_cast<size_t>(dim.sym)];
      int64_t& bound = values[static_cast<size_t>(dim.sym)];
      if (bound < 0) {
        if (size < s.min || size > s.max || (s.divisible_by > 1 && size % s.divisible_by != 0)) {
          mismatch(
              g, t.name, where,
              s.name + " in [" + std::to_string(s.min) + ", " + std::to_string(s.max) + "]" +
                  (s.divisible_by > 1 ? " divisible by " + std::to_string(s.divisible_by) : ""),
              std::to_string(size));
        }
        bound = size;
      } else if (size != bound) {
        mismatch(g, t.name, where, s.name + " = " + std::to_string(bound), std::to_string(size));
      }
    }
    // Generated kernels index row-major and load whole elements.
    if (dl.strides != nullptr) {
      int64_t expect = 1;
      for (int d = dl.ndim - 1; d >= 0; --d) {
        if (dl.shape[d] != 1 && dl.strides[d] != expect) {
          mismatch(g, t.name, "strides[" + std::to_string(d) + "]",
                   std::to_string(expect) + " (contiguous)", std::to_string(dl.strides[d]));
        }
        expect *= dl.shape[d];
      }
    }
    const auto address = reinterpret_cast<uintptr_t>(dl.data) + dl.byte_offset;
    const auto element = static_cast<uintptr_t>(dtype_size(t.node->dtype));
    if (address % element != 0) {
      mismatch(g, t.name, "data", "alignment to " + std::to_string(element) + " bytes",
               "address " + std::to_string(address));
    }
  }
  return values;
}

const DLTensor& plan_tensor(const compiler::PlanBuffer& buffer, const JitCall& call) {
  const bool input = buffer.role == compiler::BufferRole::input;
  const std::span<const DLTensor* const> tensors = input ? call.inputs : call.outputs;
  if (buffer.index >= tensors.size()) {
    throw Error(ErrorCode::internal,
                "kiln: a JIT plan binds " + std::string(input ? "input " : "output ") +
                    std::to_string(buffer.index) + " of a call with " +
                    std::to_string(tensors.size()) + (input ? " inputs" : " outputs"));
  }
  return *tensors[buffer.index];
}

size_t temp_bytes(const compiler::PlanBuffer& buffer, const ir::SymbolValues& values) {
  const int64_t numel = buffer.numel.evaluate(values);
  size_t bytes = 0;
  if (numel < 0 || __builtin_mul_overflow(static_cast<size_t>(std::max<int64_t>(numel, 1)),
                                          static_cast<size_t>(dtype_size(buffer.dtype)), &bytes)) {
    throw Error(ErrorCode::internal, "kiln: a JIT plan's temp buffer of " + std::to_string(numel) +
                                         " elements is negative or too large");
  }
  return bytes;
}

void check_work_items(const compiler::CpuLoweredGraph& plan, const JitCall& call,
                      const ir::SymbolValues& values) {
  std::vector<int64_t> numel(plan.buffers.size());
  for (size_t b = 0; b < plan.buffers.size(); ++b) {
    const compiler::PlanBuffer& pb = plan.buffers[b];
    if (pb.role == compiler::BufferRole::temp) {
      numel[b] = pb.numel.evaluate(values);
      continue;
    }
    const DLTensor& t = plan_tensor(pb, call);
    int64_t elements = 1;
    for (int32_t d = 0; d < t.ndim; ++d) {
      if (__builtin_mul_overflow(elements, t.shape[d], &elements)) elements = INT64_MAX;
    }
    numel[b] = elements;
  }
  for (size_t l = 0; l < plan.launches.size(); ++l) {
    const compiler::CpuLaunch& launch = plan.launches[l];
    int64_t largest = 0;
    for (uint32_t b : launch.buffers) {
      if (b >= numel.size()) {
        throw Error(ErrorCode::internal, "kiln: a JIT plan's launch " + std::to_string(l) +
                                             " binds buffer " + std::to_string(b) + " of " +
                                             std::to_string(numel.size()));
      }
      largest = std::max(largest, numel[b]);
    }
    const int64_t work = launch.work_items.evaluate(values);
    if (work < 0 || work > largest) {
      throw Error(ErrorCode::internal, "kiln: a JIT plan's launch " + std::to_string(l) + " has " +
                                           std::to_string(work) + " work items, expected 0 to " +
                                           std::to_string(largest) +
                                           ", the elements of the largest buffer it binds");
    }
  }
}

}  // namespace kiln::jit::detail
