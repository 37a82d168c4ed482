// Test helper: CUDA packages without the codegen. The manifest is built by
// hand with the FlatBuffers object API and written by the real
// PackageWriter. Kernels live in cubin stand-ins (bytes no driver is meant
// to read) or in a hand-written PTX kernel, which the driver JIT-compiles
// for any device, so a GPU test needs no nvcc.
//
// The graph: fill() -> y: f32[1024], one "general" specialization per
// target, each launching that target's kernel fill@<target> as
// kiln_test_fill(float* y, int64_t n, float a): y[i] = a * i for i < n.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/compiler/package_writer.h"

namespace kiln_test {

namespace fb = kiln::fb;

inline constexpr const char* kFillPtx = R"(.version 7.0
.target sm_75
.address_size 64

.visible .entry kiln_test_fill(
    .param .u64 y,
    .param .u64 n,
    .param .f32 a
)
{
    .reg .pred %p<2>;
    .reg .b32 %r<5>;
    .reg .b64 %rd<7>;
    .reg .f32 %f<4>;

    ld.param.u64 %rd1, [y];
    ld.param.u64 %rd2, [n];
    ld.param.f32 %f1, [a];
    mov.u32 %r1, %ctaid.x;
    mov.u32 %r2, %ntid.x;
    mov.u32 %r3, %tid.x;
    mad.lo.s32 %r4, %r1, %r2, %r3;
    cvt.u64.u32 %rd3, %r4;
    setp.ge.u64 %p1, %rd3, %rd2;
    @%p1 bra DONE;
    cvt.rn.f32.u64 %f2, %rd3;
    mul.rn.f32 %f3, %f2, %f1;
    cvta.to.global.u64 %rd4, %rd1;
    shl.b64 %rd5, %rd3, 2;
    add.s64 %rd6, %rd4, %rd5;
    st.global.f32 [%rd6], %f3;
DONE:
    ret;
}
)";

struct CudaTestOptions {
  std::vector<std::string> targets = {"cuda:sm_80", "cuda:sm_90"};  // oldest first
  bool ptx_for_newest = true;   // the last target's kernels also get a PTX blob
  bool kernels_in_ptx = false;  // each kernel's own blob is PTX instead of a cubin stand-in
  std::string ptx = kFillPtx;
  std::string entry = "kiln_test_fill";
  uint32_t block_x = 256;
  uint32_t shared_bytes = 0;
};

struct CudaTestPackage {
  fb::ManifestT manifest;
  std::vector<kiln::compiler::BlobInput> blobs;
};

inline constexpr int64_t kFillElements = 1024;

inline std::unique_ptr<fb::SizeExprT> cuda_constant(int64_t value) {
  auto e = std::make_unique<fb::SizeExprT>();
  e->ops = {fb::ExprOp(fb::ExprOpKind::Const, value)};
  return e;
}

// Blob t is kernel t's (target t's); the PTX blob, when asked for, comes last.
inline CudaTestPackage make_cuda_test_package(const CudaTestOptions& o = {}) {
  CudaTestPackage p;
  fb::ManifestT& m = p.manifest;
  const std::vector<uint8_t> ptx_bytes(o.ptx.begin(), o.ptx.end());  // no trailing NUL
  auto graph = std::make_unique<fb::GraphEntryT>();
  graph->name = "fill";
  auto y = std::make_unique<fb::TensorSpecT>();
  y->name = "y";
  y->dtype = fb::DType::F32;
  y->dims = {fb::Dim(kFillElements, -1)};
  graph->outputs.push_back(std::move(y));
  graph->structure_hash = std::make_unique<fb::Hash128>(0xf111, 0x1);
  for (uint32_t t = 0; t < o.targets.size(); ++t) {
    auto target = std::make_unique<fb::TargetT>();
    target->name = o.targets[t];
    target->device = fb::DeviceKind::Cuda;
    target->arch = o.targets[t].substr(o.targets[t].find(':') + 1);
    m.targets.push_back(std::move(target));

    auto kernel = std::make_unique<fb::KernelT>();
    kernel->name = "fill@" + o.targets[t];
    kernel->entry = o.entry;
    kernel->target = t;
    kernel->blob = t;
    m.kernels.push_back(std::move(kernel));
    if (o.kernels_in_ptx) {
      p.blobs.push_back({fb::BlobKind::Ptx, t, ptx_bytes});
    } else {
      p.blobs.push_back({fb::BlobKind::Cubin, t, std::vector<uint8_t>(256, uint8_t(0x7f + t))});
    }

    auto spec = std::make_unique<fb::SpecializationT>();
    spec->name = "general@" + o.targets[t];
    spec->target = t;
    spec->plan = std::make_unique<fb::LaunchPlanT>();
    auto buffer = std::make_unique<fb::BufferDeclT>();
    buffer->role = fb::BufferRole::Output;
    buffer->dtype = fb::DType::F32;
    buffer->numel = cuda_constant(kFillElements);
    spec->plan->buffers.push_back(std::move(buffer));
    auto launch = std::make_unique<fb::KernelLaunchT>();
    launch->kernel = t;
    launch->buffers = {0};
    launch->grid.push_back(cuda_constant((kFillElements + o.block_x - 1) / o.block_x));
    launch->grid.push_back(cuda_constant(1));
    launch->grid.push_back(cuda_constant(1));
    launch->block = {o.block_x, 1, 1};
    launch->shared_bytes = o.shared_bytes;
    spec->plan->launches.push_back(std::move(launch));
    spec->key = std::make_unique<fb::Hash128>(t, 0xf111);
    graph->specializations.push_back(std::move(spec));
  }
  m.graphs.push_back(std::move(graph));
  if (o.ptx_for_newest && !o.targets.empty()) {
    const auto newest = static_cast<uint32_t>(o.targets.size() - 1);
    m.kernels[newest]->ptx_blob = static_cast<int32_t>(p.blobs.size());
    p.blobs.push_back({fb::BlobKind::Ptx, newest, ptx_bytes});
  }
  m.provenance = std::make_unique<fb::ProvenanceT>();
  m.provenance->kiln_version = "0.1.0-test";
  return p;
}

inline std::vector<uint8_t> write_cuda_test_package(CudaTestPackage p) {
  return kiln::compiler::write_package(std::move(p.manifest), std::move(p.blobs));
}

}  // namespace kiln_test
