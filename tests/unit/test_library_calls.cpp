// Manifest validation of library calls (KernelLaunch.library_call): a
// well-formed gemm plan opens; each way a gemm can be malformed is refused
// at open as package_corrupt, naming what is wrong; launches without a
// library call keep their checks.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/abi/library_call.h"
#include "kiln/error.h"
#include "kiln/package_reader.h"
#include "test_support/cpu_test_package.h"
#include "test_support/cuda_test_package.h"
#include "test_support/gemm_test_package.h"

namespace {

using kiln::DType;
using kiln::ErrorCode;
using kiln::GemmEpilogue;
using kiln::GemmProblem;
using kiln::PackageReader;
namespace fb = kiln::fb;

fb::KernelLaunchT& launch_of(fb::ManifestT& m) {
  return *m.graphs[0]->specializations[0]->plan->launches[0];
}
fb::GemmCallT& gemm_of(fb::ManifestT& m) { return *launch_of(m).library_call->gemm; }

// The PackageError's code and text when opening `bytes` fails, or
// "opened" with ErrorCode::internal when it does not.
std::pair<ErrorCode, std::string> open_outcome(const std::vector<uint8_t>& bytes) {
  try {
    PackageReader::open_memory(kiln_test::as_bytes(bytes));
  } catch (const kiln::PackageError& e) {
    return {e.code(), e.what()};
  }
  return {ErrorCode::internal, "opened"};
}

TEST(LibraryCallValidation, WellFormedGemmPlansOpen) {
  for (GemmEpilogue e :
       {GemmEpilogue::none, GemmEpilogue::bias, GemmEpilogue::relu, GemmEpilogue::bias_relu}) {
    GemmProblem p = kiln_test::example_gemm();
    p.epilogue = e;
    const std::vector<uint8_t> bytes =
        kiln_test::write_gemm_test_package(kiln_test::make_gemm_test_package(p));
    const PackageReader reader = PackageReader::open_memory(kiln_test::as_bytes(bytes));
    const fb::KernelLaunch* launch =
        reader.manifest().graphs()->Get(0)->specializations()->Get(0)->plan()->launches()->Get(0);
    EXPECT_EQ(launch->kernel(), kiln::kNoKernel);
    ASSERT_NE(launch->library_call(), nullptr);
    EXPECT_EQ(launch->buffers()->size(), kiln::gemm_has_bias(e) ? 4u : 3u);
  }
  // Each dtype pairing cuBLASLt's f32-accumulating gemm takes.
  for (DType in : {DType::f32, DType::f16, DType::bf16}) {
    for (DType out : {in, DType::f32}) {
      GemmProblem p = kiln_test::example_gemm();
      p.a_dtype = p.b_dtype = in;
      p.d_dtype = out;
      EXPECT_EQ(
          open_outcome(kiln_test::write_gemm_test_package(kiln_test::make_gemm_test_package(p)))
              .second,
          "opened")
          << kiln::dtype_name(in) << " -> " << kiln::dtype_name(out);
    }
  }
  // No batch or strides: a single matrix.
  kiln_test::GemmTestPackage p = kiln_test::make_gemm_test_package(kiln_test::example_gemm());
  gemm_of(p.manifest).batch.reset();
  gemm_of(p.manifest).stride_a.reset();
  gemm_of(p.manifest).stride_b.reset();
  EXPECT_EQ(open_outcome(kiln_test::write_gemm_test_package(std::move(p))).second, "opened");
}

TEST(LibraryCallValidation, EachMalformedGemmIsRefused) {
  struct Case {
    const char* what;
    std::function<void(fb::ManifestT&)> mutate;
    const char* says;
  };
  auto buffer_dtype = [](fb::ManifestT& m, uint32_t b, fb::DType t) {
    m.graphs[0]->specializations[0]->plan->buffers[b]->dtype = t;
  };
  auto symbol_expr = [](int64_t symbol) {
    auto e = std::make_unique<fb::SizeExprT>();
    e->ops = {fb::ExprOp(fb::ExprOpKind::Symbol, symbol)};
    return e;
  };
  const std::vector<Case> cases = {
      {"a kernel index with the call", [](fb::ManifestT& m) { launch_of(m).kernel = 0; },
       "is a library call but names kernel 0, expected 4294967295 (kNoKernel)"},
      {"kNoKernel without a call", [](fb::ManifestT& m) { launch_of(m).library_call.reset(); },
       "makes no library call"},
      {"an unknown call kind",
       [](fb::ManifestT& m) {
         launch_of(m).library_call->kind = static_cast<fb::LibraryCallKind>(7);
       },
       "calls library function kind 7, expected Gemm (0)"},
      {"no gemm table", [](fb::ManifestT& m) { launch_of(m).library_call->gemm.reset(); },
       "is a Gemm without its gemm table"},
      {"A and B of two dtypes", [](fb::ManifestT& m) { gemm_of(m).b_dtype = fb::DType::F32; },
       "multiplies f16 by f32, expected A and B of one dtype among f32, f16, bf16"},
      {"an integer gemm",
       [&](fb::ManifestT& m) {
         gemm_of(m).a_dtype = gemm_of(m).b_dtype = fb::DType::I32;
         buffer_dtype(m, 0, fb::DType::I32);
         buffer_dtype(m, 1, fb::DType::I32);
       },
       "multiplies i32 by i32"},
      {"an unknown dtype",
       [](fb::ManifestT& m) { gemm_of(m).a_dtype = static_cast<fb::DType>(40); },
       "multiplies unknown by f16"},
      {"D of a third dtype",
       [&](fb::ManifestT& m) {
         gemm_of(m).d_dtype = fb::DType::BF16;
         buffer_dtype(m, 2, fb::DType::BF16);
         buffer_dtype(m, 3, fb::DType::BF16);
       },
       "writes D as bf16, expected f16 or f32"},
      {"an unknown epilogue",
       [](fb::ManifestT& m) { gemm_of(m).epilogue = static_cast<fb::GemmEpilogue>(9); },
       "has unknown epilogue 9"},
      {"alpha NaN", [](fb::ManifestT& m) { gemm_of(m).alpha = std::nan(""); }, "has alpha nan"},
      {"alpha infinite", [](fb::ManifestT& m) { gemm_of(m).alpha = -INFINITY; }, "has alpha -inf"},
      {"3 buffers with a bias", [](fb::ManifestT& m) { launch_of(m).buffers.pop_back(); },
       "passes 3 buffers, expected 4 (A, B, D, bias)"},
      {"4 buffers without a bias",
       [](fb::ManifestT& m) { gemm_of(m).epilogue = fb::GemmEpilogue::Relu; },
       "passes 4 buffers, expected 3 (A, B, D)"},
      {"2 buffers",
       [](fb::ManifestT& m) {
         gemm_of(m).epilogue = fb::GemmEpilogue::None;
         launch_of(m).buffers = {0, 1};
       },
       "passes 2 buffers, expected 3"},
      {"a buffer the plan lacks", [](fb::ManifestT& m) { launch_of(m).buffers[1] = 9; },
       "names buffer 9 for B of 4"},
      {"A's buffer of another dtype", [&](fb::ManifestT& m) { buffer_dtype(m, 0, fb::DType::F32); },
       "reads A as f16 but buffer 0 is f32"},
      {"the bias's buffer of another dtype",
       [&](fb::ManifestT& m) { buffer_dtype(m, 2, fb::DType::F16); },
       "reads the bias as f32 but buffer 2 is f16"},
      {"D written into an input",
       [](fb::ManifestT& m) {
         gemm_of(m).d_dtype = fb::DType::F16;
         launch_of(m).buffers[2] = 0;
         launch_of(m).buffers[3] = 1;
       },
       "writes D into buffer 0, an input"},
      {"no m", [](fb::ManifestT& m) { gemm_of(m).m.reset(); }, "gemm m is missing"},
      {"an empty k", [](fb::ManifestT& m) { gemm_of(m).k->ops.clear(); }, "gemm k is missing"},
      {"no lda", [](fb::ManifestT& m) { gemm_of(m).lda.reset(); }, "gemm lda is missing"},
      {"ldb reads a symbol the graph lacks",
       [&](fb::ManifestT& m) { gemm_of(m).ldb = symbol_expr(3); }, "gemm ldb reads symbol 3 of 0"},
      {"n pops an empty stack",
       [](fb::ManifestT& m) { gemm_of(m).n->ops.push_back(fb::ExprOp(fb::ExprOpKind::Mul, 0)); },
       "gemm n pops an empty stack"},
      {"batch leaves two values",
       [](fb::ManifestT& m) {
         gemm_of(m).batch->ops.push_back(fb::ExprOp(fb::ExprOpKind::Const, 2));
       },
       "gemm batch leaves 2 values instead of 1"},
      {"stride_b with an unknown op",
       [](fb::ManifestT& m) {
         gemm_of(m).stride_b->ops = {fb::ExprOp(static_cast<fb::ExprOpKind>(30), 1)};
       },
       "gemm stride_b has unknown op 30"},
      {"a library call on a CPU target",
       [](fb::ManifestT& m) {
         m.targets[0]->name = "cpu:x86-64";
         m.targets[0]->device = fb::DeviceKind::Cpu;
         m.targets[0]->arch = "x86-64";
       },
       "is a library call, which only a CUDA target runs"},
  };
  for (const Case& c : cases) {
    kiln_test::GemmTestPackage p = kiln_test::make_gemm_test_package(kiln_test::example_gemm());
    c.mutate(p.manifest);
    const auto [code, message] = open_outcome(kiln_test::write_gemm_test_package(std::move(p)));
    EXPECT_EQ(code, ErrorCode::package_corrupt) << c.what << ": " << message;
    EXPECT_NE(message.find(c.says), std::string::npos) << c.what << ": " << message;
    EXPECT_NE(message.find("graph 'gemm' specialization 'static' launch 0"), std::string::npos)
        << c.what << ": " << message;
  }
}

TEST(LibraryCallValidation, KernelLaunchesKeepTheirChecks) {
  // A kernel launch is still held to its kernel index, its target and its
  // CUDA dimensions; a library call is not asked for a grid.
  kiln_test::CudaTestPackage p = kiln_test::make_cuda_test_package();
  p.manifest.graphs[0]->specializations[0]->plan->launches[0]->kernel = 2;
  EXPECT_NE(open_outcome(kiln_test::write_cuda_test_package(std::move(p)))
                .second.find("launch 0 names an unknown kernel"),
            std::string::npos);
  p = kiln_test::make_cuda_test_package();
  p.manifest.graphs[0]->specializations[0]->plan->launches[0]->kernel = 1;
  EXPECT_NE(open_outcome(kiln_test::write_cuda_test_package(std::move(p)))
                .second.find("runs a kernel of another target"),
            std::string::npos);
  p = kiln_test::make_cuda_test_package();
  p.manifest.graphs[0]->specializations[0]->plan->launches[0]->grid.clear();
  EXPECT_NE(open_outcome(kiln_test::write_cuda_test_package(std::move(p)))
                .second.find("has 0 grid and 3 block dimensions"),
            std::string::npos);
  // A gemm after a kernel launch in one plan, on temps: y (32 x 32) =
  // t0 (32 x 32) t1 (32 x 32).
  p = kiln_test::make_cuda_test_package();
  fb::LaunchPlanT& plan = *p.manifest.graphs[0]->specializations[1]->plan;
  for (int t = 0; t < 2; ++t) {
    auto temp = std::make_unique<fb::BufferDeclT>();
    temp->role = fb::BufferRole::Temp;
    temp->index = static_cast<uint32_t>(t);
    temp->dtype = fb::DType::F32;
    temp->numel = kiln_test::cuda_constant(1024);
    plan.buffers.push_back(std::move(temp));
  }
  GemmProblem square;
  square.m = square.n = square.k = 32;
  square.lda = square.ldb = 32;
  auto gemm = std::make_unique<fb::KernelLaunchT>();
  gemm->kernel = kiln::kNoKernel;
  gemm->buffers = {1, 2, 0};
  gemm->library_call = kiln_test::gemm_library_call(square);
  plan.launches.push_back(std::move(gemm));
  EXPECT_EQ(open_outcome(kiln_test::write_cuda_test_package(std::move(p))).second, "opened");
}

}  // namespace
