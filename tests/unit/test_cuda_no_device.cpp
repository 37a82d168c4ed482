// A machine whose NVIDIA driver sees no GPU: KILN_LIBCUDA points at a
// stand-in driver (test_support/fake_libcuda_no_device.cpp) whose cuInit
// fails with CUDA_ERROR_NO_DEVICE. The runtime must say there is no GPU, not
// pass on a driver error that reads like a version problem. Its own binary:
// the driver loads once per process.
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "kiln/cuda_devices.h"
#include "kiln/error.h"

namespace {

TEST(CudaNoDevice, CudaDeviceCountSaysTheDriverFoundNoGpu) {
  ::setenv("KILN_LIBCUDA", KILN_TEST_FAKE_LIBCUDA, 1);
  for (int attempt = 0; attempt < 2; ++attempt) {  // remembered, the same text
    try {
      const int count = kiln::cuda_device_count();
      FAIL() << count << " devices from a driver that has none";
    } catch (const kiln::Error& e) {
      EXPECT_EQ(e.code(), kiln::ErrorCode::cuda_unavailable);
      EXPECT_EQ(std::string(e.what()),
                std::string("kiln: no GPU: the CUDA driver ") + KILN_TEST_FAKE_LIBCUDA +
                    " from KILN_LIBCUDA found no CUDA device (cuInit(0): CUDA_ERROR_NO_DEVICE "
                    "(no CUDA-capable device is detected))");
    }
  }
}

}  // namespace
