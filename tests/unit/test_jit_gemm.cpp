// The JIT's side of gemm library calls, without a GPU: a cached entry may
// hold them (and is corrupt when one is malformed), a CPU plan may not, and
// a CUDA specialization runs them through CudaKernelLauncher::run_gemm with
// the sizes evaluated for the call, each operand's elements, and cuBLASLt's
// workspace after its temps, here recorded by a launcher that runs nothing.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cache_entry.h"  // runtime/jit/src
#include "cuda_specialization.h"
#include "kiln/abi/library_call.h"
#include "kiln/error.h"
#include "kiln/jit_launchers.h"
#include "test_support/gemm_test_package.h"

namespace {

using kiln::DType;
using kiln::GemmEpilogue;
using kiln::GemmProblem;
namespace fb = kiln::fb;
namespace jd = kiln::jit::detail;

std::unique_ptr<fb::SizeExprT> symbol(int64_t s, int64_t times = 1) {
  auto e = std::make_unique<fb::SizeExprT>();
  e->ops = {fb::ExprOp(fb::ExprOpKind::Symbol, s)};
  if (times != 1) {
    e->ops.push_back(fb::ExprOp(fb::ExprOpKind::Const, times));
    e->ops.push_back(fb::ExprOp(fb::ExprOpKind::Mul, 0));
  }
  return e;
}

// A plan over one symbol s: kernel 0 fills a temp t (s x 8 f16), then a
// gemm d (s x 4, f32) = relu(t (s x 8) * w (8 x 4) + bias): buffers a
// (input 0, unused by the gemm), w (input 1), bias (input 2), t, d.
std::unique_ptr<fb::SpecializationT> plan_with_gemm() {
  auto spec = std::make_unique<fb::SpecializationT>();
  spec->name = "general";
  spec->symbol_values = {-1};
  spec->plan = std::make_unique<fb::LaunchPlanT>();
  auto buffer = [&](fb::BufferRole role, uint32_t index, fb::DType dtype,
                    std::unique_ptr<fb::SizeExprT> numel) {
    auto b = std::make_unique<fb::BufferDeclT>();
    b->role = role;
    b->index = index;
    b->dtype = dtype;
    b->numel = std::move(numel);
    spec->plan->buffers.push_back(std::move(b));
  };
  buffer(fb::BufferRole::Input, 0, fb::DType::F16, symbol(0, 8));
  buffer(fb::BufferRole::Input, 1, fb::DType::F16, kiln_test::gemm_constant(32));
  buffer(fb::BufferRole::Input, 2, fb::DType::F32, kiln_test::gemm_constant(4));
  buffer(fb::BufferRole::Temp, 0, fb::DType::F16, symbol(0, 8));
  buffer(fb::BufferRole::Output, 0, fb::DType::F32, symbol(0, 4));
  auto fill = std::make_unique<fb::KernelLaunchT>();
  fill->kernel = 0;
  fill->buffers = {0, 3};
  for (int d = 0; d < 3; ++d) fill->grid.push_back(kiln_test::gemm_constant(1));
  fill->block = {128, 1, 1};
  spec->plan->launches.push_back(std::move(fill));
  GemmProblem p;
  p.a_dtype = p.b_dtype = DType::f16;
  p.d_dtype = DType::f32;
  p.k = 8;
  p.n = 4;
  p.lda = 8;
  p.ldb = 4;
  p.alpha = 0.5;
  p.epilogue = GemmEpilogue::bias_relu;
  auto gemm = std::make_unique<fb::KernelLaunchT>();
  gemm->kernel = kiln::kNoKernel;
  gemm->buffers = {3, 1, 4, 2};
  gemm->library_call = kiln_test::gemm_library_call(p);
  gemm->library_call->gemm->m = symbol(0);
  spec->plan->launches.push_back(std::move(gemm));
  return spec;
}

std::vector<uint8_t> finish(const fb::SpecializationT& spec) {
  flatbuffers::FlatBufferBuilder builder;
  builder.Finish(fb::Specialization::Pack(builder, &spec));
  return {builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize()};
}

jd::CacheEntry entry_of(const fb::SpecializationT& spec) {
  jd::CacheEntry entry;
  entry.specialization = finish(spec);
  entry.kernels = {"kiln_jit_fill"};
  entry.code = {std::vector<std::byte>(16, std::byte{0x7f})};
  return entry;
}

TEST(JitGemm, ACachedEntryMayHoldALibraryCall) {
  const std::unique_ptr<fb::SpecializationT> spec = plan_with_gemm();
  const std::optional<jd::CacheEntry> entry = jd::unpack_entry(jd::pack_entry(entry_of(*spec)));
  ASSERT_TRUE(entry.has_value());
  EXPECT_TRUE(jd::fits_graph(entry->specialization, 1));
  // Its gemm reads symbol 0: a graph without it cannot run the entry.
  EXPECT_FALSE(jd::fits_graph(entry->specialization, 0));
  const auto* stored = flatbuffers::GetRoot<fb::Specialization>(entry->specialization.data());
  const kiln::compiler::CudaLoweredGraph plan = jd::cuda_plan(*stored, entry->kernels);
  ASSERT_EQ(plan.launches.size(), 2u);
  EXPECT_EQ(plan.launches[1].kernel, kiln::kNoKernel);
  const auto gemms = jd::cuda_gemms(*stored);
  ASSERT_EQ(gemms.size(), 2u);
  EXPECT_FALSE(gemms[0].has_value());
  ASSERT_TRUE(gemms[1].has_value());
  const int64_t symbols[] = {6};
  EXPECT_EQ(gemms[1]->evaluate(symbols).m, 6);
  // No CPU target makes library calls: such an entry is corrupt.
  EXPECT_THROW(jd::cpu_plan(*stored, entry->kernels), kiln::Error);
}

TEST(JitGemm, AMalformedLibraryCallMakesTheEntryCorrupt) {
  auto unpacked = [](const fb::SpecializationT& spec) {
    return jd::unpack_entry(jd::pack_entry(entry_of(spec)));
  };
  auto fits = [&](const fb::SpecializationT& spec) {
    const std::optional<jd::CacheEntry> entry = unpacked(spec);
    return entry.has_value() && jd::fits_graph(entry->specialization, 1);
  };
  std::unique_ptr<fb::SpecializationT> spec = plan_with_gemm();
  spec->plan->launches[1]->library_call.reset();  // kNoKernel, and nothing to call
  EXPECT_FALSE(unpacked(*spec).has_value());
  spec = plan_with_gemm();
  spec->plan->launches[1]->kernel = 7;  // a kernel the entry lacks
  EXPECT_FALSE(unpacked(*spec).has_value());
  spec = plan_with_gemm();
  spec->plan->launches[1]->kernel = 0;  // a kernel and a call: neither can be trusted
  EXPECT_FALSE(fits(*spec));
  spec = plan_with_gemm();
  spec->plan->launches[1]->library_call->gemm.reset();
  EXPECT_FALSE(fits(*spec));
  spec = plan_with_gemm();
  spec->plan->launches[1]->buffers.pop_back();  // the bias
  EXPECT_FALSE(fits(*spec));
  spec = plan_with_gemm();
  spec->plan->launches[1]->library_call->gemm->b_dtype = fb::DType::BF16;
  EXPECT_FALSE(fits(*spec));
  spec = plan_with_gemm();
  EXPECT_TRUE(fits(*spec));
}

// Records what a specialization asks of the package's CUDA side.
class RecordingLauncher final : public kiln::CudaKernelLauncher {
 public:
  void* load_function(int, std::span<const std::byte>, const char* entry, uint32_t,
                      std::string_view) override {
    loaded.push_back(entry);
    return &loaded;
  }
  void launch_kernel(int, void* function, const uint32_t*, const uint32_t*, uint32_t, void*, void**,
                     std::string_view, std::string_view kernel) override {
    EXPECT_EQ(function, &loaded);
    order.push_back(std::string(kernel));
  }
  void* allocate_workspace(int, size_t bytes, void*) override {
    allocated = bytes;
    workspace.assign(bytes, std::byte{0});
    return workspace.data();
  }
  void release_workspace(int, void* ptr, size_t bytes, void*) noexcept override {
    released = ptr == workspace.data() && bytes == allocated;
  }
  size_t gemm_workspace_bytes(int ordinal) override {
    EXPECT_EQ(ordinal, 3);
    return kGemmWorkspace;
  }
  void run_gemm(int ordinal, const GemmProblem& problem, const kiln::GemmOperands& operands,
                void* stream, std::string_view graph, std::string_view launch) override {
    EXPECT_EQ(ordinal, 3);
    EXPECT_EQ(stream, this);
    EXPECT_EQ(graph, "mlp");
    order.push_back(std::string(launch));
    problems.push_back(problem);
    gemm_operands.push_back(operands);
  }

  static constexpr size_t kGemmWorkspace = 1 << 20;
  std::vector<std::string> loaded;
  std::vector<std::string> order;
  std::vector<GemmProblem> problems;
  std::vector<kiln::GemmOperands> gemm_operands;
  std::vector<std::byte> workspace;
  size_t allocated = 0;
  bool released = false;
};

DLTensor host_tensor(void* data, DLDataType dtype, int64_t* shape) {
  DLTensor t{};
  t.data = data;
  t.device = {kDLCUDA, 3};
  t.ndim = 1;
  t.dtype = dtype;
  t.shape = shape;
  return t;
}

TEST(JitGemm, ASpecializationRunsItsGemmThroughTheLauncher) {
  const std::unique_ptr<fb::SpecializationT> spec = plan_with_gemm();
  jd::CacheEntry entry = entry_of(*spec);
  const auto* stored = flatbuffers::GetRoot<fb::Specialization>(entry.specialization.data());
  RecordingLauncher launcher;
  const jd::CudaSpecialization c(jd::cuda_plan(*stored, entry.kernels), std::move(entry.code),
                                 launcher, 3, 1, "mlp", "cuda:sm_90", "test entry",
                                 jd::cuda_gemms(*stored));
  EXPECT_EQ(launcher.loaded, std::vector<std::string>{"kiln_jit_fill"});

  const int64_t s = 6;
  std::vector<uint16_t> a(48), w(32);
  std::vector<float> bias(4), d(24);
  int64_t a_shape[] = {6, 8};
  int64_t w_shape[] = {32};
  int64_t bias_shape[] = {4};
  int64_t d_shape[] = {24};
  DLTensor ta = host_tensor(a.data(), {kDLFloat, 16, 1}, a_shape);
  ta.ndim = 2;
  const DLTensor tw = host_tensor(w.data(), {kDLFloat, 16, 1}, w_shape);
  const DLTensor tbias = host_tensor(bias.data(), {kDLFloat, 32, 1}, bias_shape);
  const DLTensor td = host_tensor(d.data(), {kDLFloat, 32, 1}, d_shape);
  const DLTensor* inputs[] = {&ta, &tw, &tbias};
  const DLTensor* outputs[] = {&td};
  kiln::JitCall call{inputs, outputs, &launcher, &s, nullptr, &launcher, 3};
  c.run(call);

  EXPECT_EQ(launcher.order, (std::vector<std::string>{"kiln_jit_fill", "launch 1 (gemm)"}));
  ASSERT_EQ(launcher.problems.size(), 1u);
  const GemmProblem& p = launcher.problems[0];
  EXPECT_EQ(p.m, 6);
  EXPECT_EQ(p.n, 4);
  EXPECT_EQ(p.k, 8);
  EXPECT_EQ(p.alpha, 0.5);
  EXPECT_EQ(p.epilogue, GemmEpilogue::bias_relu);
  // The temp (s * 8 f16 = 96 bytes) first, cuBLASLt's workspace after it at
  // the next 256-byte boundary, in one allocation given back after the call.
  EXPECT_EQ(launcher.allocated, 256 + RecordingLauncher::kGemmWorkspace);
  EXPECT_TRUE(launcher.released);
  const kiln::GemmOperands& o = launcher.gemm_operands[0];
  EXPECT_EQ(o.a.data, launcher.workspace.data());
  EXPECT_EQ(o.a.elements, 48);  // the temp, as the plan sized it
  EXPECT_EQ(o.b.data, w.data());
  EXPECT_EQ(o.b.elements, 32);  // the caller's tensors, as they span
  EXPECT_EQ(o.d.data, d.data());
  EXPECT_EQ(o.d.elements, 24);
  EXPECT_EQ(o.bias.data, bias.data());
  EXPECT_EQ(o.bias.elements, 4);
  EXPECT_EQ(o.workspace, launcher.workspace.data() + 256);
  EXPECT_EQ(o.workspace_bytes, RecordingLauncher::kGemmWorkspace);
}

TEST(JitGemm, GemmsThatDisagreeWithThePlanAreRefused) {
  const std::unique_ptr<fb::SpecializationT> spec = plan_with_gemm();
  jd::CacheEntry entry = entry_of(*spec);
  const auto* stored = flatbuffers::GetRoot<fb::Specialization>(entry.specialization.data());
  RecordingLauncher launcher;
  // No gemms for a plan whose second launch is a library call.
  EXPECT_THROW(jd::CudaSpecialization(jd::cuda_plan(*stored, entry.kernels), entry.code, launcher,
                                      3, 1, "mlp", "cuda:sm_90", "test entry"),
               kiln::Error);
  // A gemm where the plan launches a kernel.
  auto gemms = jd::cuda_gemms(*stored);
  gemms[0] = gemms[1];
  EXPECT_THROW(jd::CudaSpecialization(jd::cuda_plan(*stored, entry.kernels), entry.code, launcher,
                                      3, 1, "mlp", "cuda:sm_90", "test entry", std::move(gemms)),
               kiln::Error);
}

}  // namespace
