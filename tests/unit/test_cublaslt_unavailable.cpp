// A machine where cuBLASLt cannot be loaded: KILN_LIBCUBLASLT names a file
// that is not a shared library, before anything in the process loads
// cuBLASLt (it is loaded once per process, hence this separate binary).
// Packages with gemm launches still open; the first gemm fails with the
// typed error, naming the graph, the file and dlopen's reason, and so does
// every later one.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "cublaslt_library.h"
#include "cuda_driver.h"
#include "cuda_launcher.h"
#include "kiln/error.h"
#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "test_support/cpu_test_package.h"
#include "test_support/gemm_test_package.h"
#include "test_support/load_in_own_process.h"

namespace {

namespace fs = std::filesystem;
using kiln::ErrorCode;
using kiln::detail::CublasLtLibrary;

// A text file where the library should be, longer than an ELF header so
// that dlopen reads and rejects its header.
const std::string& not_a_library() {
  static const std::string path = [] {
    const fs::path dir = fs::path(KILN_TEST_BINARY_DIR) / "cublaslt_unavailable";
    fs::create_directories(dir);
    const fs::path file = dir / "libcublasLt.so.13";
    std::ofstream out(file);
    for (int line = 0; line < 8; ++line) out << "not a shared library, only text\n";
    return file.string();
  }();
  return path;
}

// Every test sets it first, so the result does not depend on which test
// runs first in the process.
void without_cublaslt() { ::setenv("KILN_LIBCUBLASLT", not_a_library().c_str(), 1); }

std::string load_error(const std::string& graph) {
  try {
    CublasLtLibrary::get(graph);
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::library_unavailable);
    return e.what();
  }
  ADD_FAILURE() << "cuBLASLt loaded from " << not_a_library();
  return "";
}

TEST(CublasLtUnavailable, LoadingFailsWithATypedErrorNamingGraphFileAndReason) {
  without_cublaslt();
  const std::string what = load_error("mlp");
  EXPECT_EQ(what.rfind("kiln: graph 'mlp': a gemm launch needs cuBLASLt, which cannot be loaded "
                       "(expected libcublasLt of CUDA 12 or 13, from KILN_LIBCUBLASLT",
                       0),
            0u)
      << what;
  // dlopen's reason, which names the one file tried.
  EXPECT_NE(what.find("\n  " + not_a_library() + ": "), std::string::npos) << what;
  EXPECT_NE(what.find("invalid ELF header"), std::string::npos) << what;
  EXPECT_EQ(kiln::error_code_name(ErrorCode::library_unavailable), "library_unavailable");
}

// A file that opens but exports none of cuBLASLt's entry points (libc), in
// a process of its own (cuBLASLt loads once per process): the typed error
// names the file, the first entry point missing and dlsym's reason.
TEST(CublasLtUnavailableDeathTest, ALibraryWithoutTheEntryPointsNamesTheMissingSymbol) {
  kiln_test::expect_load_error_in_own_process(
      "KILN_LIBCUBLASLT", "libc.so.6", [] { return load_error("mlp"); },
      "kiln: graph 'mlp': cuBLASLt libc\\.so\\.6 has no cublasLtGetVersion \\(expected libcublasLt "
      "of CUDA 12 or 13; [^)]*libc\\.so\\.6: undefined symbol: cublasLtGetVersion\\)");
}

TEST(CublasLtUnavailable, TheFailureIsRememberedNotRetried) {
  without_cublaslt();
  const std::string first = load_error("a");
  ::unsetenv("KILN_LIBCUBLASLT");  // the default names would find the toolkit's
  EXPECT_EQ(load_error("a"), first);
  without_cublaslt();
  // Each call names its own graph.
  const std::string other = load_error("b");
  EXPECT_EQ(other.substr(other.find("': ")), first.substr(first.find("': ")));
}

TEST(CublasLtUnavailable, TheDefaultCandidatesAreCuda13Then12) {
  ::unsetenv("KILN_LIBCUBLASLT");
  ::setenv("CUDA_HOME", "/opt/cuda-x/", 1);
  const std::vector<std::string> c = kiln::detail::cublaslt_candidates();
  const std::vector<std::string> expected = {"libcublasLt.so.13",
                                             "libcublasLt.so.12",
                                             "/opt/cuda-x/lib64/libcublasLt.so.13",
                                             "/opt/cuda-x/lib64/libcublasLt.so.12",
                                             "/usr/local/cuda/lib64/libcublasLt.so.13",
                                             "/usr/local/cuda/lib64/libcublasLt.so.12"};
  EXPECT_EQ(c, expected);
  ::unsetenv("CUDA_HOME");
  without_cublaslt();
  EXPECT_EQ(kiln::detail::cublaslt_candidates(), std::vector<std::string>{not_a_library()});
}

TEST(CublasLtUnavailable, APackageWithGemmsOpensAndRunsNothingUntilAGemmRuns) {
  without_cublaslt();
  kiln::GemmProblem p;
  p.m = 4;
  p.n = 8;
  p.k = 16;
  p.lda = 16;
  p.ldb = 8;
  p.epilogue = kiln::GemmEpilogue::bias;
  const std::vector<uint8_t> bytes =
      kiln_test::write_gemm_test_package(kiln_test::make_gemm_test_package(p));
  // Opening verifies the manifest and builds the launcher; neither loads
  // cuBLASLt (the library is already known to be missing here, and no
  // error says so).
  kiln::Package package = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
  EXPECT_EQ(package.graph("gemm").num_inputs(), 3u);
  const kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
  kiln::detail::CudaLauncher launcher(reader, {});
  // A gemm with nothing to do needs no library.
  kiln::GemmProblem empty = p;
  empty.m = 0;
  EXPECT_NO_THROW(
      launcher.run_gemm(0, empty, kiln::GemmOperands{}, nullptr, "gemm", "launch 0 (gemm)"));
}

// On a GPU machine, the whole call: guards pass, the workspace is
// allocated, and the gemm fails before cuBLASLt (or anything else) would
// read the tensors, which are addresses nobody allocated. Skipped without a
// driver and a device.
TEST(CublasLtUnavailable, OnAGpuTheCallFailsNamingTheGraph) {
  without_cublaslt();
  int devices = 0;
  try {
    const kiln::detail::CudaDriver& cu = kiln::detail::CudaDriver::get();
    if (cu.cuDeviceGetCount(&devices) != 0) devices = 0;
  } catch (const kiln::Error&) {
  }
  if (devices == 0) GTEST_SKIP() << "no CUDA driver or device";
  kiln::GemmProblem p;
  p.m = 4;
  p.n = 8;
  p.k = 16;
  p.lda = 16;
  p.ldb = 8;
  int major = 0;
  int minor = 0;
  const kiln::detail::CudaDriver& cu = kiln::detail::CudaDriver::get();
  cu.cuDeviceGetAttribute(&major, kiln::detail::kCuDeviceAttributeComputeCapabilityMajor, 0);
  cu.cuDeviceGetAttribute(&minor, kiln::detail::kCuDeviceAttributeComputeCapabilityMinor, 0);
  const std::string target = "cuda:sm_" + std::to_string(major * 10 + minor);
  if (!kiln::is_known_target_name(target)) GTEST_SKIP() << target << " is not a Kiln target";
  kiln::Package package = kiln::Package::open_memory(kiln_test::as_bytes(
      kiln_test::write_gemm_test_package(kiln_test::make_gemm_test_package(p, {target}))));
  const DLDevice gpu{kDLCUDA, 0};
  const int64_t a_shape[] = {64};
  const int64_t b_shape[] = {128};
  const int64_t d_shape[] = {32};
  const kiln::TensorView a(reinterpret_cast<void*>(0x7f0000000000), kiln::DType::f32, a_shape, {},
                           gpu);
  const kiln::TensorView b(reinterpret_cast<void*>(0x7f1000000000), kiln::DType::f32, b_shape, {},
                           gpu);
  const kiln::TensorView d(reinterpret_cast<void*>(0x7f2000000000), kiln::DType::f32, d_shape, {},
                           gpu);
  try {
    package.graph("gemm").call({a, b}, {d});
    FAIL() << "the gemm ran without cuBLASLt";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::library_unavailable) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind("kiln: graph 'gemm': a gemm launch needs cuBLASLt", 0),
              0u)
        << e.what();
  }
}

}  // namespace
