// Test helper: a CUDA package whose one plan is a gemm library call, built
// by hand with the FlatBuffers object API and written by the real
// PackageWriter. No kernels and no blobs: a library call needs neither.
//
// The graph "gemm" takes flat f32/f16/bf16 buffers sized to what the
// problem spans: a [gemm_a_elements], b [gemm_b_elements], then bias [n]
// when the epilogue has one, and returns d [batch * m * n]; one
// specialization per target, guarded on every tensor's dtype, device
// (CUDA), rank, size and contiguity, and on the target's arch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gemm_reference.h"
#include "kiln/abi/kiln_package_generated.h"
#include "kiln/abi/library_call.h"
#include "kiln/compiler/package_writer.h"
#include "kiln/gemm.h"

namespace kiln_test {

namespace gemm_fb = kiln::fb;

struct GemmTestPackage {
  gemm_fb::ManifestT manifest;
  std::vector<kiln::compiler::BlobInput> blobs;
};

inline std::unique_ptr<gemm_fb::SizeExprT> gemm_constant(int64_t value) {
  auto e = std::make_unique<gemm_fb::SizeExprT>();
  e->ops = {gemm_fb::ExprOp(gemm_fb::ExprOpKind::Const, value)};
  return e;
}

inline std::unique_ptr<gemm_fb::GuardT> gemm_guard(gemm_fb::GuardKind kind, uint16_t tensor,
                                                   int64_t value, uint16_t dim = 0) {
  auto g = std::make_unique<gemm_fb::GuardT>();
  g->kind = kind;
  g->tensor = tensor;
  g->dim = dim;
  g->value = value;
  return g;
}

// The GemmCall of `p`, every size a constant.
inline std::unique_ptr<gemm_fb::LibraryCallT> gemm_library_call(const kiln::GemmProblem& p) {
  auto gemm = std::make_unique<gemm_fb::GemmCallT>();
  gemm->a_dtype = static_cast<gemm_fb::DType>(p.a_dtype);
  gemm->b_dtype = static_cast<gemm_fb::DType>(p.b_dtype);
  gemm->d_dtype = static_cast<gemm_fb::DType>(p.d_dtype);
  gemm->m = gemm_constant(p.m);
  gemm->n = gemm_constant(p.n);
  gemm->k = gemm_constant(p.k);
  gemm->batch = gemm_constant(p.batch);
  gemm->trans_a = p.trans_a;
  gemm->trans_b = p.trans_b;
  gemm->lda = gemm_constant(p.lda);
  gemm->ldb = gemm_constant(p.ldb);
  gemm->stride_a = gemm_constant(p.stride_a);
  gemm->stride_b = gemm_constant(p.stride_b);
  gemm->alpha = p.alpha;
  gemm->epilogue = static_cast<gemm_fb::GemmEpilogue>(p.epilogue);
  auto call = std::make_unique<gemm_fb::LibraryCallT>();
  call->kind = gemm_fb::LibraryCallKind::Gemm;
  call->gemm = std::move(gemm);
  return call;
}

inline GemmTestPackage make_gemm_test_package(const kiln::GemmProblem& p,
                                              const std::vector<std::string>& targets = {
                                                  "cuda:sm_90"}) {
  GemmTestPackage out;
  gemm_fb::ManifestT& m = out.manifest;
  const bool bias = kiln::gemm_has_bias(p.epilogue);
  struct Tensor {
    const char* name;
    kiln::DType dtype;
    int64_t elements;
  };
  std::vector<Tensor> inputs = {{"a", p.a_dtype, gemm_a_elements(p)},
                                {"b", p.b_dtype, gemm_b_elements(p)}};
  if (bias) inputs.push_back({"bias", p.d_dtype, p.n});
  const Tensor output{"d", p.d_dtype, gemm_d_elements(p)};

  auto graph = std::make_unique<gemm_fb::GraphEntryT>();
  graph->name = "gemm";
  auto spec_of = [](const Tensor& t) {
    auto s = std::make_unique<gemm_fb::TensorSpecT>();
    s->name = t.name;
    s->dtype = static_cast<gemm_fb::DType>(t.dtype);
    s->dims = {gemm_fb::Dim(t.elements, -1)};
    return s;
  };
  for (const Tensor& t : inputs) graph->inputs.push_back(spec_of(t));
  graph->outputs.push_back(spec_of(output));
  graph->structure_hash = std::make_unique<gemm_fb::Hash128>(0x6e33, 0x1);

  std::vector<Tensor> tensors = inputs;
  tensors.push_back(output);
  for (uint32_t t = 0; t < targets.size(); ++t) {
    auto target = std::make_unique<gemm_fb::TargetT>();
    target->name = targets[t];
    target->device = gemm_fb::DeviceKind::Cuda;
    target->arch = targets[t].substr(targets[t].find(':') + 1);
    const int64_t arch = std::stoll(target->arch.substr(3));
    m.targets.push_back(std::move(target));

    auto spec = std::make_unique<gemm_fb::SpecializationT>();
    spec->name = "static";
    spec->target = t;
    for (uint16_t i = 0; i < tensors.size(); ++i) {
      spec->guards.push_back(
          gemm_guard(gemm_fb::GuardKind::DType, i, static_cast<int64_t>(tensors[i].dtype)));
      spec->guards.push_back(gemm_guard(gemm_fb::GuardKind::Device, i, 2));  // kDLCUDA
      spec->guards.push_back(gemm_guard(gemm_fb::GuardKind::Rank, i, 1));
      spec->guards.push_back(gemm_guard(gemm_fb::GuardKind::DimConst, i, tensors[i].elements));
      spec->guards.push_back(gemm_guard(gemm_fb::GuardKind::Contiguous, i, 0));
    }
    spec->guards.push_back(gemm_guard(gemm_fb::GuardKind::CudaArch, 0, arch));
    spec->plan = std::make_unique<gemm_fb::LaunchPlanT>();
    auto launch = std::make_unique<gemm_fb::KernelLaunchT>();
    launch->kernel = kiln::kNoKernel;
    for (uint32_t i = 0; i < tensors.size(); ++i) {
      auto buffer = std::make_unique<gemm_fb::BufferDeclT>();
      const bool is_output = i + 1 == tensors.size();
      buffer->role = is_output ? gemm_fb::BufferRole::Output : gemm_fb::BufferRole::Input;
      buffer->index = is_output ? 0 : i;
      buffer->dtype = static_cast<gemm_fb::DType>(tensors[i].dtype);
      buffer->numel = gemm_constant(tensors[i].elements);
      spec->plan->buffers.push_back(std::move(buffer));
    }
    // A, B, D, then the bias.
    launch->buffers = {0, 1, static_cast<uint32_t>(inputs.size())};
    if (bias) launch->buffers.push_back(2);
    launch->library_call = gemm_library_call(p);
    spec->plan->launches.push_back(std::move(launch));
    spec->key = std::make_unique<gemm_fb::Hash128>(t, 0x6e33);
    graph->specializations.push_back(std::move(spec));
  }
  m.graphs.push_back(std::move(graph));
  m.provenance = std::make_unique<gemm_fb::ProvenanceT>();
  m.provenance->kiln_version = "0.1.0-test";
  return out;
}

inline std::vector<uint8_t> write_gemm_test_package(GemmTestPackage p) {
  return kiln::compiler::write_package(std::move(p.manifest), std::move(p.blobs));
}

}  // namespace kiln_test
