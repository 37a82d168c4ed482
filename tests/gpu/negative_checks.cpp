#include "negative_checks.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <kiln/runtime.h>

#include "cuda_support.h"
#include "gpu_test_kernels.h"

namespace kiln_gpu {
namespace {

// The graph every negative check calls: x [n, 4096], a, b [4096] -> y.
constexpr const char* kGraph = "gelu_affine_f32";
constexpr int64_t kRows = 64;
constexpr int64_t kWidth = 4096;

// The message's first line and, for a guard miss, the first failed guard
// on the next: enough to see why without the whole list.
std::string brief(std::string_view text) {
  const size_t end = text.find('\n');
  if (end == std::string_view::npos) return std::string(text);
  std::string_view next = text.substr(end + 1);
  next = next.substr(0, next.find('\n'));
  next.remove_prefix(std::min(next.find_first_not_of(' '), next.size()));
  return std::string(text.substr(0, end)) + (next.empty() ? "" : " " + std::string(next));
}

std::string error_kind(const std::exception& e) {
  if (dynamic_cast<const kiln::RecompileError*>(&e)) return "RecompileError";
  if (dynamic_cast<const kiln::NoSpecializationError*>(&e)) return "NoSpecializationError";
  if (const auto* k = dynamic_cast<const kiln::Error*>(&e)) {
    return "Error(" + std::string(kiln::error_code_name(k->code())) + ")";
  }
  return "not a kiln::Error";
}

// The tensors of one gelu_affine_f32 call, valid as allocated; each check
// breaks one thing in copies of their DLTensors.
struct Call {
  explicit Call(Memory& memory)
      : x(memory, kiln::DType::f32, {kRows, kWidth}, Layout::aligned),
        a(memory, kiln::DType::f32, {kWidth}, Layout::aligned),
        b(memory, kiln::DType::f32, {kWidth}, Layout::aligned),
        y(memory, kiln::DType::f32, {kRows, kWidth}, Layout::aligned) {
    // 0x3F3F3F3F is 0.747f: finite inputs, whatever would have run.
    for (DeviceTensor* t : {&x, &a, &b}) t->upload(std::vector<uint8_t>(t->bytes(), 0x3F));
    y.poison();
  }

  bool output_untouched() const {
    const std::vector<uint8_t> bytes = y.download();
    for (uint8_t v : bytes) {
      if (v != DeviceTensor::kPoison) return false;
    }
    return y.red_zones_intact();
  }

  DeviceTensor x, a, b, y;
};

// Calls the graph with the given tensors and expects kiln::Error (of type
// Expected), no hit counted and the output untouched. `mention`, when not
// empty, must appear in the message.
template <typename Expected>
bool expect_refusal(kiln::Package& package, Memory& memory, const Call& call,
                    const std::vector<const DLTensor*>& inputs, const DLTensor* output,
                    const std::string& mention) {
  kiln::Graph& graph = package.graph(kGraph);
  const uint64_t hits_before = graph.counters().hits;
  std::string outcome;
  bool ok = false;
  try {
    graph.call(inputs, std::vector<const DLTensor*>{output}, memory.stream());
    outcome = "the call ran";
  } catch (const Expected& e) {
    const std::string message = e.what();
    outcome = error_kind(e) + ": " + brief(message);
    ok = mention.empty() || message.find(mention) != std::string::npos;
    if (!ok) outcome += " (does not name '" + mention + "')";
  } catch (const std::exception& e) {
    outcome = "unexpected " + error_kind(e) + ": " + brief(e.what());
  }
  memory.synchronize();
  if (graph.counters().hits != hits_before) {
    ok = false;
    outcome += "; a specialization was counted as a hit";
  }
  if (!call.output_untouched()) {
    ok = false;
    outcome += "; the output was written";
  }
  std::printf("    %-6s %s\n", ok ? "ok" : "FAILED", outcome.c_str());
  return ok;
}

kiln::Package open_package(kiln::Stance stance) {
  kiln::OpenOptions options;
  options.stance = stance;
  return kiln::Package::open_embedded(gpu_test_kernels::package(), options);
}

// A DLTensor copy whose shape array outlives it. Movable (the vector's
// buffer moves with it), not copyable (a copy would point at the original's).
struct Altered {
  explicit Altered(const DLTensor& original) : tensor(original) {
    shape.assign(original.shape, original.shape + original.ndim);
    tensor.shape = shape.data();
  }
  Altered(const Altered&) = delete;
  Altered(Altered&&) noexcept = default;
  DLTensor tensor;
  std::vector<int64_t> shape;
};

template <typename T>
std::string text_of(const T& value) {
  if constexpr (std::is_convertible_v<T, std::string_view>) {
    return std::string(std::string_view(value));
  } else {
    return std::to_string(static_cast<long long>(value));
  }
}

}  // namespace

void check_guard_misses(Memory& memory, Counts& counts) {
  struct Case {
    const char* what;
    std::function<void(Altered& x, Altered& y)> alter;
  };
  const Case cases[] = {
      {"x is f16, the graph takes f32",
       [](Altered& x, Altered&) { x.tensor.dtype = kiln::to_dlpack(kiln::DType::f16); }},
      {"x is [64, 4095], the graph takes [n, 4096]",
       [](Altered& x, Altered& y) { x.shape[1] = y.shape[1] = kWidth - 1; }},
      {"y has 32 rows, x has 64 (symbol n disagrees)",
       [](Altered&, Altered& y) { y.shape[0] = kRows / 2; }},
  };
  Call call(memory);
  std::printf("guard misses on %s tensors (%s, n = %lld):\n", memory.is_cuda() ? "CUDA" : "host",
              kGraph, static_cast<long long>(kRows));
  for (const Case& c : cases) {
    Altered x(*call.x.dl());
    Altered y(*call.y.dl());
    c.alter(x, y);
    const std::vector<const DLTensor*> inputs = {&x.tensor, call.a.dl(), call.b.dl()};
    std::printf("  %s\n", c.what);
    kiln::Package fallback = open_package(kiln::Stance::fallback);
    counts.add(expect_refusal<kiln::Error>(fallback, memory, call, inputs, &y.tensor, ""));
    kiln::Package strict = open_package(kiln::Stance::fail_on_recompile);
    counts.add(expect_refusal<kiln::RecompileError>(strict, memory, call, inputs, &y.tensor, ""));
  }
}

void check_missing_device(Memory& memory, int device_count, Counts& counts) {
  // Far past the last device, so a message that names it cannot do so by
  // accident (a "1" is in many messages).
  const int ordinal = device_count + 40;
  std::printf("tensors on cuda:%d (this machine has %d CUDA device%s):\n", ordinal, device_count,
              device_count == 1 ? "" : "s");
  Call call(memory);
  std::vector<Altered> tensors;
  for (const DeviceTensor* t : {&call.x, &call.a, &call.b, &call.y}) tensors.emplace_back(*t->dl());
  for (Altered& t : tensors) t.tensor.device = DLDevice{kDLCUDA, ordinal};
  const std::vector<const DLTensor*> inputs = {&tensors[0].tensor, &tensors[1].tensor,
                                               &tensors[2].tensor};
  kiln::Package package = open_package(kiln::Stance::fallback);
  counts.add(expect_refusal<kiln::Error>(package, memory, call, inputs, &tensors[3].tensor,
                                         std::to_string(ordinal)));
}

void check_mixed_devices(Memory& first, Memory& second, Counts& counts) {
  std::printf("inputs on cuda:%d, the output on cuda:%d:\n", first.device().device_id,
              second.device().device_id);
  Call inputs_call(first);
  Call output_call(second);
  const std::vector<const DLTensor*> inputs = {inputs_call.x.dl(), inputs_call.a.dl(),
                                               inputs_call.b.dl()};
  kiln::Package package = open_package(kiln::Stance::fallback);
  const bool ok =
      expect_refusal<kiln::Error>(package, second, output_call, inputs, output_call.y.dl(), "");
  first.synchronize();
  counts.add(ok);
}

int run_fault_check(int device) {
  std::unique_ptr<Memory> memory = Memory::cuda(device);
  kiln::OpenOptions options;
  options.cuda_synchronize = true;  // a fault is reported by the call that caused it
  kiln::Package package = kiln::Package::open_embedded(gpu_test_kernels::package(), options);
  kiln::Graph& graph = package.graph(kGraph);

  // Addresses the process never mapped on the device, with a shape large
  // enough that the kernel reads far into them; a and b are real. x and y
  // lie apart, or the runtime's overlap check would refuse the call first.
  constexpr int64_t kFaultRows = 16384;
  constexpr uintptr_t kBogusX = 0x10000;
  constexpr uintptr_t kBogusY = uintptr_t{1} << 40;
  Call call(*memory);
  Altered x(*call.x.dl());
  Altered y(*call.y.dl());
  x.tensor.data = reinterpret_cast<void*>(kBogusX);
  y.tensor.data = reinterpret_cast<void*>(kBogusY);
  for (Altered* t : {&x, &y}) t->shape[0] = kFaultRows;
  const std::vector<const DLTensor*> inputs = {&x.tensor, call.a.dl(), call.b.dl()};
  const std::vector<const DLTensor*> outputs = {&y.tensor};
  std::printf(
      "fault: %s on cuda:%d, x at %#llx and y at %#llx, shape [%lld, %lld], "
      "cuda_synchronize\n",
      kGraph, device, static_cast<unsigned long long>(kBogusX),
      static_cast<unsigned long long>(kBogusY), static_cast<long long>(kFaultRows),
      static_cast<long long>(kWidth));
  try {
    std::printf("  specialization: %s\n", std::string(graph.select(inputs, outputs)).c_str());
    graph.call(inputs, outputs, memory->stream());
    std::printf("  FAILED: the call returned without an error\n");
    return 1;
  } catch (const kiln::CudaError& e) {
    const std::string g = e.graph();
    const std::string k = e.kernel();
    std::printf("  CudaError: graph '%s', kernel '%s', result %s\n  what(): %s\n", g.c_str(),
                k.c_str(), text_of(e.result()).c_str(), e.what());
    const bool ok = !g.empty() && !k.empty();
    std::printf("gpu_check --fault: %s\n",
                ok ? "CudaError reported" : "FAILED: CudaError without graph or kernel");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::printf("  FAILED: expected kiln::CudaError, got %s: %s\n", error_kind(e).c_str(),
                e.what());
    return 1;
  }
}

}  // namespace kiln_gpu
