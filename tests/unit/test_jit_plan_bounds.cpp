// A JIT plan may come from the disk cache, so its run path checks what it
// reads (issue 16, item 3): a buffer index past the call's tensors, or a
// temp whose size is negative or past size_t, is a typed error before any
// memory is touched or allocated.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cpu_specialization.h"
#include "kiln/error.h"
#include "kiln/tensor_view.h"

namespace {

using kiln::compiler::BufferRole;
using kiln::compiler::PlanBuffer;
using kiln::compiler::SizeExpr;
using kiln::jit::detail::CpuSpecialization;

// Runs a specialization of the one buffer `buffer` (no launches) on one f32
// input and one output of 4 elements; returns the error's text, or "ran".
std::string run_with(PlanBuffer buffer) {
  CpuSpecialization spec;
  spec.plan.buffers.push_back(std::move(buffer));
  std::vector<float> x(4), y(4);
  const kiln::TensorView in(x.data(), kiln::DType::f32, {4});
  const kiln::TensorView out(y.data(), kiln::DType::f32, {4});
  const DLTensor* inputs[] = {&in.dl()};
  const DLTensor* outputs[] = {&out.dl()};
  try {
    spec.run({inputs, outputs, nullptr, nullptr});
    return "ran";
  } catch (const kiln::Error& e) {
    return std::string(kiln::error_code_name(e.code())) + ": " + e.what();
  }
}

TEST(JitPlanBounds, ABufferIndexPastTheCallsTensorsIsAnError) {
  EXPECT_EQ(run_with({BufferRole::input, 0, kiln::DType::f32, SizeExpr::constant(4)}), "ran");
  EXPECT_EQ(run_with({BufferRole::input, 1, kiln::DType::f32, SizeExpr::constant(4)}),
            "internal: kiln: a JIT plan binds input 1 of a call with 1 inputs");
  EXPECT_EQ(run_with({BufferRole::output, 7, kiln::DType::f32, SizeExpr::constant(4)}),
            "internal: kiln: a JIT plan binds output 7 of a call with 1 outputs");
}

TEST(JitPlanBounds, ATempOfNegativeOrUnaddressableSizeIsAnError) {
  EXPECT_EQ(run_with({BufferRole::temp, 0, kiln::DType::f32, SizeExpr::constant(16)}), "ran");
  EXPECT_EQ(run_with({BufferRole::temp, 0, kiln::DType::f32, SizeExpr::constant(-3)}),
            "internal: kiln: a JIT plan's temp buffer of -3 elements is negative or too large");
  // 2^62 f32 elements: 2^64 bytes, which wrapped to 0 before the check.
  EXPECT_EQ(run_with({BufferRole::temp, 0, kiln::DType::f32, SizeExpr::constant(int64_t{1} << 62)}),
            "internal: kiln: a JIT plan's temp buffer of 4611686018427387904 elements is negative "
            "or too large");
}

TEST(JitPlanBounds, MoreWorkItemsThanTheBuffersHoldIsAnError) {
  // One launch over x and y (4 elements each), of 4 and then 5 work items;
  // a kernel that must never run (the check comes first).
  for (const int64_t work : {int64_t{4}, int64_t{5}}) {
    CpuSpecialization spec;
    spec.plan.buffers.push_back({BufferRole::input, 0, kiln::DType::f32, SizeExpr::constant(4)});
    spec.plan.buffers.push_back({BufferRole::output, 0, kiln::DType::f32, SizeExpr::constant(4)});
    spec.plan.launches.push_back({0, {0, 1}, SizeExpr::constant(work), SizeExpr::constant(1)});
    static int calls = 0;
    spec.kernels.push_back([](const KilnCpuKernelArgs*, int64_t, int64_t) { ++calls; });
    std::vector<float> x(4), y(4);
    const kiln::TensorView in(x.data(), kiln::DType::f32, {4});
    const kiln::TensorView out(y.data(), kiln::DType::f32, {4});
    const DLTensor* inputs[] = {&in.dl()};
    const DLTensor* outputs[] = {&out.dl()};
    calls = 0;
    try {
      spec.run({inputs, outputs, nullptr, nullptr});
      EXPECT_EQ(work, 4);
      EXPECT_EQ(calls, 1);
    } catch (const kiln::Error& e) {
      EXPECT_EQ(work, 5);
      EXPECT_EQ(calls, 0);
      EXPECT_EQ(std::string(e.what()),
                "kiln: a JIT plan's launch 0 has 5 work items, expected 0 to 4, the elements of "
                "the largest buffer it binds");
    }
  }
}

}  // namespace
