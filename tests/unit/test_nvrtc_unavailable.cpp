// A machine where NVRTC cannot be loaded: KILN_NVRTC_PATH names a file that
// is not a shared library, before anything in the process loads NVRTC (it is
// loaded once per process, hence this separate binary). Every NVRTC entry
// point of the JIT must fail with the typed error, naming that path.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "kiln/jit/jit_error.h"
#include "nvrtc_build.h"  // runtime/jit/src: the JIT's internals
#include "nvrtc_library.h"
#include "test_support/load_in_own_process.h"

namespace {

namespace fs = std::filesystem;
using kiln::jit::JitCompileError;

// A text file where the library should be, longer than an ELF header so
// that dlopen reads and rejects its header.
const std::string& not_a_library() {
  static const std::string path = [] {
    const fs::path dir = fs::path(KILN_TEST_BINARY_DIR) / "nvrtc_unavailable";
    fs::create_directories(dir);
    const fs::path file = dir / "libnvrtc.so.13";
    std::ofstream out(file);
    for (int line = 0; line < 8; ++line) out << "not a shared library, only text\n";
    return file.string();
  }();
  return path;
}

// Every test sets it first, so the result does not depend on which test
// runs first in the process.
void without_nvrtc() { ::setenv("KILN_NVRTC_PATH", not_a_library().c_str(), 1); }

JitCompileError load_error(const std::string& graph) {
  try {
    kiln::jit::detail::NvrtcLibrary::get(graph);
  } catch (const JitCompileError& e) {
    return e;
  }
  ADD_FAILURE() << "NVRTC loaded from " << not_a_library();
  return JitCompileError(graph, "", 0, "");
}

TEST(NvrtcUnavailable, LoadingFailsWithATypedErrorNamingThePath) {
  without_nvrtc();
  const JitCompileError e = load_error("norms");
  EXPECT_EQ(e.code(), kiln::ErrorCode::jit_compile_failed);
  EXPECT_EQ(e.exit_code(), -1);
  EXPECT_EQ(e.graph(), "norms");
  const std::string what = e.what();
  EXPECT_EQ(
      what.rfind("kiln: graph 'norms': JIT compile failed: NVRTC not found: KILN_NVRTC_PATH=" +
                     not_a_library() + " is not a loadable NVRTC library",
                 0),
      0u)
      << what;
  // dlopen's reason, for the one path tried.
  EXPECT_EQ(e.compiler_output().rfind(not_a_library() + ": ", 0), 0u) << e.compiler_output();
  EXPECT_NE(e.compiler_output().find("invalid ELF header"), std::string::npos)
      << e.compiler_output();
}

// A file that opens but exports none of NVRTC's entry points (libc), in a
// process of its own (NVRTC loads once per process): the typed error names
// the file, the first entry point missing and dlsym's reason.
TEST(NvrtcUnavailableDeathTest, ALibraryWithoutTheEntryPointsNamesTheMissingSymbol) {
  kiln_test::expect_load_error_in_own_process(
      "KILN_NVRTC_PATH", "libc.so.6", [] { return std::string(load_error("norms").what()); },
      "kiln: graph 'norms': JIT compile failed: NVRTC libc\\.so\\.6 \\(KILN_NVRTC_PATH\\) has no "
      "nvrtcVersion \\(expected an NVRTC library, 11\\.2 or newer; [^)]*libc\\.so\\.6: undefined "
      "symbol: nvrtcVersion\\)");
}

TEST(NvrtcUnavailable, TheFailureIsRememberedNotRetried) {
  without_nvrtc();
  const std::string first = load_error("a").what();
  ::unsetenv("KILN_NVRTC_PATH");  // the default paths would find the toolkit's NVRTC
  EXPECT_EQ(std::string(load_error("a").what()), first);
  without_nvrtc();
  // Each call names its own graph.
  const std::string other = load_error("b").what();
  EXPECT_EQ(other.substr(other.find("': ")), first.substr(first.find("': ")));
}

TEST(NvrtcUnavailable, VersionAndEveryBuildThrowTheSameError) {
  without_nvrtc();
  const std::string expected = load_error("g").what();
  auto expect_load_error = [&](auto&& call) {
    try {
      call();
      ADD_FAILURE() << "no error";
    } catch (const JitCompileError& e) {
      EXPECT_EQ(std::string(e.what()), expected);
      EXPECT_EQ(e.exit_code(), -1);
    }
  };
  const std::string source = "extern \"C\" __global__ void k(float* p) { p[0] = 1.0f; }\n";
  expect_load_error([] { kiln::jit::detail::nvrtc_version("g"); });
  expect_load_error([&] { kiln::jit::detail::build_cubin(source, "k", 90, "g"); });
  expect_load_error([&] { kiln::jit::detail::build_ptx(source, "k", 90, "g"); });
  expect_load_error([&] { kiln::jit::detail::build_cubins({{"k", source}}, 90, "g"); });
}

}  // namespace
