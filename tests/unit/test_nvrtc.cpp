// NVRTC compiles of the generated CUDA kernels, as the fallback JIT makes
// them (runtime/jit/src/nvrtc_*): every graph of the GPU suite
// (tests/gpu/graphs.cpp: gelu, softmax, layernorm, rmsnorm in f32 and bf16,
// f16, integers, broadcasts, every op) lowered with CudaCodegenOptions::nvrtc
// for static and dynamic sizes, compiled for sm_80 and sm_90. No GPU is
// needed. NVRTC is opened at run time: where it cannot be found these tests
// fail (the CI machine has the CUDA toolkit); test_nvrtc_unavailable covers
// its absence.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/cuda_codegen.h"
#include "kiln/compiler/ir.h"
#include "kiln/graph.h"
#include "kiln/jit/jit_error.h"
#include "nvrtc_build.h"  // runtime/jit/src: the JIT's internals
#include "nvrtc_library.h"

namespace {

using kiln::compiler::CudaKernel;
using kiln::jit::JitCompileError;
using kiln::jit::detail::build_cubin;
using kiln::jit::detail::build_cubins;
using kiln::jit::detail::build_ptx;
using kiln::jit::detail::NvrtcLibrary;

constexpr int kNvrtcErrorCompilation = 6;  // NVRTC_ERROR_COMPILATION

std::string text_of(const std::vector<std::byte>& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

bool is_elf(const std::vector<std::byte>& image) {
  return image.size() > 4 && std::memcmp(image.data(),
                                         "\x7f"
                                         "ELF",
                                         4) == 0;
}

// The symbol as an ELF string table holds it: NUL on both sides.
bool names_symbol(const std::vector<std::byte>& image, const std::string& entry) {
  return text_of(image).find(std::string(1, '\0') + entry + '\0') != std::string::npos;
}

kiln::compiler::CudaLoweredGraph lower_for_nvrtc(const kiln::ir::Graph& g, int64_t value,
                                                 bool aligned, bool index32) {
  kiln::compiler::CudaCodegenOptions o;
  o.entry_prefix = "kiln_nvrtc_" + g.name + (value < 0 ? "_dyn" : "_st") + (aligned ? "_a" : "_u") +
                   (index32 ? "_i32" : "");
  o.aligned16 = aligned;
  o.index32 = index32;
  o.nvrtc = true;
  return kiln::compiler::lower_cuda(g, kiln::ir::SymbolValues(g.symbols.size(), value), o);
}

constexpr const char* kSoftmaxGraph = "softmax_f32";

CudaKernel softmax_kernel() {
  for (const auto& r : kiln::registered_graphs()) {
    if (r.name != kSoftmaxGraph) continue;
    const auto g = kiln::ir::canonicalize(kiln::trace(r.name, r.function));
    return lower_for_nvrtc(g, 64, true, false).kernels.at(0);
  }
  ADD_FAILURE() << kSoftmaxGraph << " is not registered";
  return {};
}

TEST(Nvrtc, LoadsAndReportsItsVersionAndArchs) {
  const NvrtcLibrary& nvrtc = NvrtcLibrary::get("probe");
  EXPECT_GE(nvrtc.major, 12) << nvrtc.path;
  EXPECT_TRUE(std::regex_match(nvrtc.version(), std::regex(R"(nvrtc \d+\.\d+)")))
      << nvrtc.version();
  EXPECT_EQ(kiln::jit::detail::nvrtc_version("probe"), nvrtc.version());
  EXPECT_NE(nvrtc.path.find("libnvrtc"), std::string::npos) << nvrtc.path;
  for (int arch : {80, 90}) {
    EXPECT_NE(std::find(nvrtc.archs.begin(), nvrtc.archs.end(), arch), nvrtc.archs.end()) << arch;
  }
  EXPECT_EQ(nvrtc.result_text(0), "NVRTC_SUCCESS");
  EXPECT_EQ(nvrtc.result_text(kNvrtcErrorCompilation), "NVRTC_ERROR_COMPILATION");
  EXPECT_EQ(nvrtc.result_text(4242), "nvrtcResult 4242");
}

// Each nvcc flag of the generator has its NVRTC counterpart, so a flag added
// there fails here until the JIT says what it means for NVRTC.
TEST(Nvrtc, OptionsAreTheGeneratorsNvccFlags) {
  const auto options = kiln::jit::detail::nvrtc_options(90);
  auto has = [&](const std::string& o) {
    return std::find(options.begin(), options.end(), o) != options.end();
  };
  for (const std::string& flag : kiln::compiler::cuda_compile_flags("sm_90")) {
    if (flag == "-O3") continue;  // NVRTC's default for device code, and no NVRTC option
    if (flag == "-arch=sm_90") {
      EXPECT_TRUE(has("--gpu-architecture=sm_90"));
      continue;
    }
    EXPECT_TRUE(has(flag)) << "nvcc flag " << flag << " has no NVRTC counterpart";
  }
  // No fast math, said explicitly rather than left to the defaults.
  for (const char* o : {"--fmad=true", "--prec-div=true", "--prec-sqrt=true", "--ftz=false"}) {
    EXPECT_TRUE(has(o)) << o;
  }
  for (const std::string& o : options) EXPECT_EQ(o.find("fast"), std::string::npos) << o;
  // -default-device is not wanted: every generated function is __device__ or __global__.
  EXPECT_FALSE(has("-default-device"));
  // PTX: the same options for the virtual arch.
  auto ptx = kiln::jit::detail::nvrtc_options(90, true);
  ASSERT_EQ(ptx.size(), options.size());
  EXPECT_EQ(ptx[0], "--gpu-architecture=compute_90");
  EXPECT_EQ(options[0], "--gpu-architecture=sm_90");
  EXPECT_TRUE(std::equal(ptx.begin() + 1, ptx.end(), options.begin() + 1));
}

// Every kernel of every GPU-suite graph: static and dynamic sizes, vectorized
// and element-aligned, int-indexed where sizes are symbolic; sm_80 and sm_90.
TEST(Nvrtc, EveryGpuGraphCompilesToCubinsForSm80AndSm90) {
  const auto registered = kiln::registered_graphs();
  ASSERT_GE(registered.size(), 20u);
  size_t cubins = 0;
  bool saw_bf16 = false;
  bool saw_f16 = false;
  for (const auto& r : registered) {
    const auto g = kiln::ir::canonicalize(kiln::trace(r.name, r.function));
    for (int64_t value : {int64_t{-1}, int64_t{64}}) {
      for (bool aligned : {true, false}) {
        for (bool index32 : {false, true}) {
          if (index32 && value >= 0) continue;  // the int variant exists for symbolic sizes only
          const auto lowered = lower_for_nvrtc(g, value, aligned, index32);
          // A graph of matmuls alone (matmul_f32) is library calls, no kernel.
          const bool library_calls_only =
              std::all_of(lowered.launches.begin(), lowered.launches.end(),
                          [](const auto& l) { return l.gemm.has_value(); });
          ASSERT_TRUE(!lowered.kernels.empty() || library_calls_only) << r.name;
          for (const auto& k : lowered.kernels) {
            ASSERT_EQ(k.source.find("#include"), std::string::npos) << k.entry << ":\n" << k.source;
            saw_bf16 = saw_bf16 || k.source.find("kiln_bf16_to_f32") != std::string::npos;
            saw_f16 = saw_f16 || k.source.find("kiln_f16_to_f32") != std::string::npos;
          }
          for (int arch : {80, 90}) {
            std::vector<std::vector<std::byte>> images;
            try {
              images = build_cubins(lowered.kernels, arch, r.name);
            } catch (const JitCompileError& e) {
              FAIL() << e.what();
            }
            ASSERT_EQ(images.size(), lowered.kernels.size());
            for (size_t k = 0; k < images.size(); ++k) {
              EXPECT_TRUE(is_elf(images[k])) << lowered.kernels[k].entry << " sm_" << arch;
              EXPECT_TRUE(names_symbol(images[k], lowered.kernels[k].entry))
                  << lowered.kernels[k].entry << " sm_" << arch;
              // One kernel per cubin, as the generator builds them.
              for (size_t other = 0; other < images.size(); ++other) {
                if (other != k) {
                  EXPECT_FALSE(names_symbol(images[k], lowered.kernels[other].entry));
                }
              }
              ++cubins;
            }
          }
        }
      }
    }
  }
  EXPECT_TRUE(saw_bf16);
  EXPECT_TRUE(saw_f16);
  EXPECT_GE(cubins, 2u * 200u);
}

TEST(Nvrtc, PtxForAComputeArchIsNulTerminatedText) {
  const CudaKernel k = softmax_kernel();
  const std::vector<std::byte> ptx = build_ptx(k.source, k.entry, 90, kSoftmaxGraph);
  ASSERT_FALSE(ptx.empty());
  EXPECT_EQ(ptx.back(), std::byte{0});
  const std::string text = text_of(ptx);
  EXPECT_EQ(text.find('\0'), text.size() - 1);  // exactly one NUL, at the end
  EXPECT_NE(text.find(".target sm_90"), std::string::npos);
  EXPECT_NE(text.find(".entry " + k.entry + "("), std::string::npos);
}

TEST(Nvrtc, ASyntaxErrorIsAJitCompileErrorWithNvrtcsDiagnostic) {
  const std::string source =
      "typedef unsigned int uint32_t;\n"
      "extern \"C\" __global__ void kiln_bad_k0(float* p) { p[0] = 1.0f +; }\n";
  try {
    build_cubin(source, "kiln_bad_k0", 90, "broken");
    FAIL() << "a syntax error compiled";
  } catch (const JitCompileError& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::jit_compile_failed);
    EXPECT_EQ(e.graph(), "broken");
    EXPECT_EQ(e.exit_code(), kNvrtcErrorCompilation);
    // NVRTC's own text, naming the kernel's file and line.
    EXPECT_NE(e.compiler_output().find("kiln_bad_k0.cu(2): error"), std::string::npos)
        << e.compiler_output();
    EXPECT_NE(e.compiler_output().find("expected an expression"), std::string::npos)
        << e.compiler_output();
    const std::string what = e.what();
    EXPECT_EQ(
        what.rfind("kiln: graph 'broken': JIT compile failed: kernel 'kiln_bad_k0' for sm_90: "
                   "nvrtcCompileProgram (nvrtc ",
                   0),
        0u)
        << what;
    EXPECT_NE(what.find("returned NVRTC_ERROR_COMPILATION (expected NVRTC_SUCCESS)"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find(e.compiler_output()), std::string::npos);
  }
}

TEST(Nvrtc, AnArchNvrtcDoesNotSupportIsATypedError) {
  const CudaKernel k = softmax_kernel();
  try {
    build_cubin(k.source, k.entry, 12, kSoftmaxGraph);
    FAIL() << "compiled for sm_12";
  } catch (const JitCompileError& e) {
    EXPECT_EQ(e.exit_code(), -1);
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot compile for arch 12 (expected one of "), std::string::npos) << what;
    EXPECT_NE(what.find("90"), std::string::npos) << what;
  }
}

// The cubin is checked for the kernel the launch plan will look up.
TEST(Nvrtc, ACubinWithoutTheEntryIsAnError) {
  const CudaKernel k = softmax_kernel();
  try {
    build_cubin(k.source, k.entry + "_missing", 90, kSoftmaxGraph);
    FAIL() << "no check for the entry";
  } catch (const JitCompileError& e) {
    EXPECT_NE(std::string(e.what()).find("the cubin has no symbol named '" + k.entry + "_missing'"),
              std::string::npos)
        << e.what();
  }
}

CudaKernel numbered_kernel(int i, bool broken) {
  const std::string entry = "kiln_order_k" + std::to_string(i);
  return {entry, "extern \"C\" __global__ void " + entry + "(float* p) { p[0] = " +
                     std::to_string(i) + (broken ? ".0f +; }\n" : ".0f; }\n")};
}

TEST(Nvrtc, BuildCubinsKeepsTheKernelsOrder) {
  std::vector<CudaKernel> kernels;
  kernels.reserve(6);
  for (int i = 0; i < 6; ++i) kernels.push_back(numbered_kernel(i, false));
  for (unsigned threads : {1u, 3u, 0u}) {
    const auto images = build_cubins(kernels, 90, "order", threads);
    ASSERT_EQ(images.size(), kernels.size());
    for (size_t i = 0; i < images.size(); ++i) {
      EXPECT_TRUE(names_symbol(images[i], kernels[i].entry)) << i << " threads " << threads;
    }
  }
  EXPECT_TRUE(build_cubins({}, 90, "empty").empty());
}

// Kernels 1 and 4 fail: the error is kernel 1's whichever thread finishes
// first.
TEST(Nvrtc, BuildCubinsThrowsTheFirstFailingKernelsError) {
  std::vector<CudaKernel> kernels;
  kernels.reserve(6);
  for (int i = 0; i < 6; ++i) kernels.push_back(numbered_kernel(i, i == 1 || i == 4));
  for (int round = 0; round < 3; ++round) {
    for (unsigned threads : {1u, 2u, 6u}) {
      try {
        build_cubins(kernels, 90, "order", threads);
        FAIL() << "broken kernels compiled";
      } catch (const JitCompileError& e) {
        EXPECT_NE(std::string(e.what()).find("kernel 'kiln_order_k1'"), std::string::npos)
            << e.what();
        EXPECT_NE(e.compiler_output().find("kiln_order_k1.cu(1): error"), std::string::npos);
      }
    }
  }
}

// Restores one environment variable when it goes out of scope.
class EnvGuard {
 public:
  explicit EnvGuard(const char* name) : name_(name) {
    const char* value = std::getenv(name);
    had_ = value != nullptr;
    if (had_) value_ = value;
  }
  ~EnvGuard() {
    if (had_) {
      ::setenv(name_, value_.c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;

 private:
  const char* name_;
  bool had_ = false;
  std::string value_;
};

TEST(Nvrtc, CandidatesFollowTheEnvironment) {
  // Loaded first, so the variables set here cannot change what this process uses.
  NvrtcLibrary::get("probe");
  EnvGuard path_guard("KILN_NVRTC_PATH");
  EnvGuard home_guard("CUDA_HOME");
  using kiln::jit::detail::nvrtc_candidates;

  ::setenv("KILN_NVRTC_PATH", "/opt/nvrtc/libnvrtc.so.13", 1);
  ::setenv("CUDA_HOME", "/opt/cuda", 1);
  EXPECT_EQ(nvrtc_candidates(), std::vector<std::string>{"/opt/nvrtc/libnvrtc.so.13"});

  ::setenv("KILN_NVRTC_PATH", "", 1);  // empty counts as unset
  const auto with_home = nvrtc_candidates();
  ASSERT_GE(with_home.size(), 3u);
  EXPECT_EQ(with_home[0], "libnvrtc.so.13");
  EXPECT_EQ(with_home[1], "libnvrtc.so.12");
  EXPECT_EQ(with_home[2], "libnvrtc.so");
  EXPECT_EQ(with_home[3], "/opt/cuda/lib64/libnvrtc.so.13");
  auto has = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  EXPECT_TRUE(has(with_home, "/usr/local/cuda/lib64/libnvrtc.so.12"));
#if defined(__x86_64__)
  EXPECT_TRUE(has(with_home, "/opt/cuda/targets/x86_64-linux/lib/libnvrtc.so"));
  EXPECT_TRUE(has(with_home, "/usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so.13"));
#endif

  ::setenv("CUDA_HOME", "/usr/local/cuda/", 1);
  const auto same_home = nvrtc_candidates();
  for (size_t i = 0; i < same_home.size(); ++i) {
    for (size_t j = i + 1; j < same_home.size(); ++j) EXPECT_NE(same_home[i], same_home[j]);
  }
  EXPECT_TRUE(has(same_home, "/usr/local/cuda/lib64/libnvrtc.so.13"));
}

}  // namespace
