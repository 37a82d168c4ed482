// A machine without an NVIDIA driver: KILN_LIBCUDA points at a file that does
// not exist, before anything in the process loads the driver (it is loaded
// once per process, hence this separate binary). CPU packages must still
// open and run, and everything CUDA must fail with a typed error.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cuda_driver.h"
#include "cuda_launcher.h"
#include "kiln/cuda_devices.h"
#include "kiln/device_allocator.h"
#include "kiln/error.h"
#include "kiln/runtime.h"
#include "test_support/cpu_test_package.h"
#include "test_support/cuda_test_package.h"
#include "test_support/load_in_own_process.h"

namespace {

using kiln::ErrorCode;
using kiln::detail::CudaDriver;
using kiln::detail::CudaLauncher;

constexpr const char* kMissingDriver = "/nonexistent/libcuda.so.1";

// Every test sets it first, so the result does not depend on which test
// runs first in the process.
void without_driver() { ::setenv("KILN_LIBCUDA", kMissingDriver, 1); }

std::string driver_error() {
  try {
    CudaDriver::get();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::cuda_unavailable);
    return e.what();
  }
  ADD_FAILURE() << "the driver loaded from " << kMissingDriver;
  return "";
}

// A file that opens but exports none of the driver's entry points (libc),
// in a process of its own (the driver loads once per process): the typed
// error names the file, the first entry point missing and dlsym's reason.
TEST(CudaUnavailableDeathTest, ALibraryWithoutTheEntryPointsNamesTheMissingSymbol) {
  kiln_test::expect_load_error_in_own_process(
      "KILN_LIBCUDA", "libc.so.6", [] { return driver_error(); },
      "kiln: no GPU: the CUDA driver libc\\.so\\.6 from KILN_LIBCUDA has no cuInit; Kiln needs an "
      "NVIDIA driver for CUDA 11\\.2 or newer \\([^)]*libc\\.so\\.6: undefined symbol: cuInit\\)");
}

TEST(CudaUnavailable, TheDriverFailsWithATypedErrorOnceAndForAll) {
  without_driver();
  const std::string first = driver_error();
  EXPECT_EQ(first.rfind("kiln: no GPU: no CUDA driver: dlopen(/nonexistent/libcuda.so.1 from "
                        "KILN_LIBCUDA) failed: ",
                        0),
            0u)
      << first;
  EXPECT_NE(first.find("CUDA tensors need an NVIDIA GPU and its driver"), std::string::npos)
      << first;
  // Remembered, not retried: the same text, even with the variable gone.
  ::unsetenv("KILN_LIBCUDA");
  EXPECT_EQ(driver_error(), first);
  without_driver();
  EXPECT_EQ(driver_error(), first);
}

// What an application asks before choosing its device: the same typed
// error, saying plainly that there is no GPU, and why.
TEST(CudaUnavailable, CudaDeviceCountSaysThereIsNoGpu) {
  without_driver();
  try {
    const int count = kiln::cuda_device_count();
    FAIL() << count << " devices without a driver";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::cuda_unavailable);
    EXPECT_EQ(std::string(e.what()), driver_error());
  }
}

TEST(CudaUnavailable, ResultTextFallsBackToTheNumber) {
  without_driver();
  EXPECT_EQ(kiln::detail::result_text(700), "CUresult 700");
}

TEST(CudaUnavailable, TheLauncherFailsOnlyWhenACudaDeviceIsUsed) {
  without_driver();
  const std::vector<uint8_t> bytes =
      kiln_test::write_cuda_test_package(kiln_test::make_cuda_test_package());
  kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
  CudaLauncher launcher(reader, {});
  EXPECT_TRUE(launcher.package_has_cuda_targets());
  for (int ordinal : {0, 1, -1}) {
    try {
      launcher.device(ordinal);
      FAIL() << ordinal;
    } catch (const kiln::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::cuda_unavailable);
      EXPECT_NE(std::string(e.what()).find("no CUDA driver"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(launcher.function(0, 0), kiln::Error);
  EXPECT_THROW(launcher.enter(0), kiln::Error);
}

TEST(CudaUnavailable, TheDefaultAllocatorThrowsAndNeverFreesThroughNothing) {
  without_driver();
  kiln::DeviceAllocator& allocator = kiln::stream_ordered_allocator();
  try {
    allocator.allocate(1024, 0, nullptr);
    FAIL() << "allocated without a driver";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::cuda_unavailable);
  }
  allocator.deallocate(nullptr, 0, 0, nullptr);
  int never_allocated = 0;
  allocator.deallocate(&never_allocated, sizeof never_allocated, 0, nullptr);  // noexcept
}

TEST(CudaUnavailable, CpuPackagesStillRun) {
  without_driver();
  if (!std::filesystem::exists(KILN_TEST_CLANGXX)) {
    GTEST_SKIP() << "no " << KILN_TEST_CLANGXX << " to build the CPU kernels";
  }
  kiln::Package package =
      kiln::Package::open_memory(kiln_test::as_bytes(kiln_test::make_test_package()),
                                 kiln::OpenOptions{.stance = kiln::Stance::fail_on_recompile});
  std::vector<float> x(8 * kiln_test::kRowWidth, 1.0f);
  std::vector<float> w(kiln_test::kRowWidth, 0.25f);
  std::vector<float> y(x.size(), 0.0f);
  package.graph("scale_add")
      .call({kiln::TensorView(x.data(), kiln::DType::f32, {8, kiln_test::kRowWidth}),
             kiln::TensorView(w.data(), kiln::DType::f32, {kiln_test::kRowWidth})},
            {kiln::TensorView(y.data(), kiln::DType::f32, {8, kiln_test::kRowWidth})});
  for (float v : y) ASSERT_EQ(v, 2.25f);
}

}  // namespace
