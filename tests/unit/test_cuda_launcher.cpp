// The CUDA side of the runtime. Target choice, manifest checks, CudaError,
// workspace checks and empty launches run everywhere; the Gpu tests skip
// without a driver and, on a GPU machine, load a hand-written PTX kernel,
// launch it on the legacy stream and read its output back.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <new>
#include <optional>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "cuda_driver.h"
#include "cuda_launcher.h"
#include "kiln/error.h"
#include "kiln/package_reader.h"
#include "test_support/cpu_test_package.h"
#include "test_support/cuda_test_package.h"

namespace {

using kiln::ErrorCode;
using kiln::PackageReader;
using kiln::detail::CudaDeviceInfo;
using kiln::detail::CudaDriver;
using kiln::detail::CudaLauncher;
using kiln_test::CudaTestOptions;
namespace fb = kiln::fb;

using Choice = std::optional<std::pair<uint32_t, bool>>;
Choice cubin(uint32_t target) { return std::pair{target, false}; }
Choice ptx(uint32_t target) { return std::pair{target, true}; }

// Through the real writer and reader, so the manifest also passes every
// check a package must.
Choice choose(const CudaTestOptions& options, int compute_capability) {
  const std::vector<uint8_t> bytes =
      kiln_test::write_cuda_test_package(kiln_test::make_cuda_test_package(options));
  PackageReader reader = PackageReader::open_memory(kiln_test::as_bytes(bytes));
  return kiln::detail::choose_cuda_target(reader.manifest(), compute_capability);
}

// Without the writer: for manifests the reader would refuse or that mix
// device kinds.
Choice choose_unchecked(const fb::ManifestT& manifest, int compute_capability) {
  flatbuffers::FlatBufferBuilder builder;
  fb::FinishManifestBuffer(builder, fb::Manifest::Pack(builder, &manifest));
  return kiln::detail::choose_cuda_target(*fb::GetManifest(builder.GetBufferPointer()),
                                          compute_capability);
}

TEST(ChooseCudaTarget, PrefersACubinOfTheSameMajorThenThePtx) {
  const CudaTestOptions o;  // cuda:sm_80, cuda:sm_90 (+ PTX)
  EXPECT_EQ(choose(o, 90), cubin(1));
  EXPECT_EQ(choose(o, 86), cubin(0));
  EXPECT_EQ(choose(o, 89), cubin(0));
  EXPECT_EQ(choose(o, 80), cubin(0));
  EXPECT_EQ(choose(o, 100), ptx(1));
  EXPECT_EQ(choose(o, 120), ptx(1));
  EXPECT_EQ(choose(o, 75), std::nullopt);
}

TEST(ChooseCudaTarget, WithoutPtxANewerMajorGetsNothing) {
  CudaTestOptions o;
  o.targets = {"cuda:sm_80"};
  o.ptx_for_newest = false;
  EXPECT_EQ(choose(o, 90), std::nullopt);
  EXPECT_EQ(choose(o, 87), cubin(0));
  EXPECT_EQ(choose(o, 70), std::nullopt);
}

TEST(ChooseCudaTarget, TheHighestArchNoNewerThanTheDeviceWins) {
  CudaTestOptions o;
  o.targets = {"cuda:sm_80", "cuda:sm_86", "cuda:sm_90"};
  EXPECT_EQ(choose(o, 80), cubin(0));
  EXPECT_EQ(choose(o, 85), cubin(0));
  EXPECT_EQ(choose(o, 86), cubin(1));
  EXPECT_EQ(choose(o, 89), cubin(1));
  EXPECT_EQ(choose(o, 90), cubin(2));
  // PTX is not needed for a device the newest cubin runs on, and is used
  // for anything newer.
  EXPECT_EQ(choose(o, 103), ptx(2));
}

TEST(ChooseCudaTarget, IgnoresCpuTargetsAndPartialPtx) {
  fb::ManifestT m = kiln_test::make_cuda_test_package().manifest;
  auto cpu = std::make_unique<fb::TargetT>();
  cpu->name = "cpu:x86-64";
  cpu->device = fb::DeviceKind::Cpu;
  cpu->arch = "x86-64";
  m.targets.insert(m.targets.begin(), std::move(cpu));
  for (auto& kernel : m.kernels) ++kernel->target;
  EXPECT_EQ(choose_unchecked(m, 90), cubin(2));
  EXPECT_EQ(choose_unchecked(m, 86), cubin(1));
  EXPECT_EQ(choose_unchecked(m, 100), ptx(2));

  // A second sm_90 kernel without PTX: the target can no longer run
  // everything through PTX, so a newer device gets nothing.
  auto extra = std::make_unique<fb::KernelT>(*m.kernels[1]);
  extra->ptx_blob = -1;
  m.kernels.push_back(std::move(extra));
  EXPECT_EQ(choose_unchecked(m, 100), std::nullopt);
  EXPECT_EQ(choose_unchecked(m, 90), cubin(2));
}

TEST(CudaLauncher, OpensWithoutTheDriver) {
  const std::vector<uint8_t> cuda =
      kiln_test::write_cuda_test_package(kiln_test::make_cuda_test_package());
  PackageReader cuda_reader = PackageReader::open_memory(kiln_test::as_bytes(cuda));
  CudaLauncher with_cuda(cuda_reader, {});
  EXPECT_TRUE(with_cuda.package_has_cuda_targets());

  const std::vector<uint8_t> cpu = kiln::compiler::write_package(
      kiln_test::make_test_manifest({{}}),
      {{fb::BlobKind::CpuSharedObject, 0, std::vector<uint8_t>(64, 1)}});
  PackageReader cpu_reader = PackageReader::open_memory(kiln_test::as_bytes(cpu));
  CudaLauncher cpu_only(cpu_reader, {});
  EXPECT_FALSE(cpu_only.package_has_cuda_targets());
}

TEST(CudaLauncher, AnEmptyGridLaunchesNothing) {
  const std::vector<uint8_t> bytes =
      kiln_test::write_cuda_test_package(kiln_test::make_cuda_test_package());
  PackageReader reader = PackageReader::open_memory(kiln_test::as_bytes(bytes));
  CudaLauncher launcher(reader, {});
  for (int zero = 0; zero < 3; ++zero) {
    CudaLauncher::LaunchDims dims{{4, 4, 4}, {128, 1, 1}, 0};
    dims.grid[zero] = 0;
    EXPECT_NO_THROW(launcher.launch(0, nullptr, dims, nullptr, nullptr, "fill", "k"));
  }
  EXPECT_EQ(launcher.allocate(0, 0, nullptr), nullptr);
  launcher.deallocate(0, nullptr, 0, nullptr);
}

// Host memory standing in for a framework's device allocator: the launcher
// only passes pointers through and checks them.
class RecordingAllocator final : public kiln::DeviceAllocator {
 public:
  explicit RecordingAllocator(size_t misalign) : misalign_(misalign) {}
  void* allocate(size_t bytes, int device, void* stream) override {
    last_bytes = bytes;
    last_device = device;
    last_stream = stream;
    ++live;
    base_ = static_cast<std::byte*>(::operator new(bytes + 512, std::align_val_t(256)));
    return base_ + misalign_;
  }
  void deallocate(void* ptr, size_t bytes, int device, void* stream) noexcept override {
    EXPECT_EQ(ptr, base_ + misalign_);
    EXPECT_EQ(bytes, last_bytes);
    EXPECT_EQ(device, last_device);
    EXPECT_EQ(stream, last_stream);
    --live;
    ::operator delete(base_, std::align_val_t(256));
    base_ = nullptr;
  }

  size_t last_bytes = 0;
  int last_device = -1;
  void* last_stream = nullptr;
  int live = 0;

 private:
  size_t misalign_;
  std::byte* base_ = nullptr;
};

TEST(CudaLauncher, WorkspaceComesFromTheOptionsAllocator) {
  const std::vector<uint8_t> bytes =
      kiln_test::write_cuda_test_package(kiln_test::make_cuda_test_package());
  PackageReader reader = PackageReader::open_memory(kiln_test::as_bytes(bytes));
  void* stream = reinterpret_cast<void*>(0x1234);

  RecordingAllocator aligned(0);
  kiln::OpenOptions options;
  options.device_allocator = &aligned;
  CudaLauncher launcher(reader, options);
  void* memory = launcher.allocate(3, 1000, stream);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(memory) % 256, 0u);
  EXPECT_EQ(aligned.last_bytes, 1000u);
  EXPECT_EQ(aligned.last_device, 3);
  EXPECT_EQ(aligned.last_stream, stream);
  EXPECT_EQ(aligned.live, 1);
  launcher.deallocate(3, memory, 1000, stream);
  EXPECT_EQ(aligned.live, 0);

  // A pointer the kernels could not use is refused and handed back.
  RecordingAllocator misaligned(64);
  options.device_allocator = &misaligned;
  CudaLauncher strict(reader, options);
  try {
    strict.allocate(0, 100, stream);
    FAIL() << "a misaligned workspace was accepted";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("not aligned to 256 bytes"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(misaligned.live, 0);
}

TEST(CudaError, NamesTheGraphTheKernelAndTheResult) {
  const kiln::CudaError e("softmax", "kiln_softmax_ab12_k0", 1,
                          "on cuda:0: cuLaunchKernel failed: CUDA_ERROR_INVALID_VALUE (invalid "
                          "argument)");
  EXPECT_STREQ(e.what(),
               "kiln: graph 'softmax', kernel 'kiln_softmax_ab12_k0' on cuda:0: cuLaunchKernel "
               "failed: CUDA_ERROR_INVALID_VALUE (invalid argument)");
  EXPECT_EQ(e.code(), ErrorCode::cuda_error);
  EXPECT_EQ(e.graph(), "softmax");
  EXPECT_EQ(e.kernel(), "kiln_softmax_ab12_k0");
  EXPECT_EQ(e.result(), 1);
  const kiln::Error& base = e;  // caught as a plain kiln::Error too
  EXPECT_EQ(base.code(), ErrorCode::cuda_error);

  EXPECT_STREQ(kiln::CudaError("g", "", 700, "on cuda:1: fault").what(),
               "kiln: graph 'g' on cuda:1: fault");
  EXPECT_STREQ(kiln::CudaError("", "k", 700, "on cuda:1: fault").what(),
               "kiln: kernel 'k' on cuda:1: fault");
}

TEST(CudaError, CodeIsAppendedWithAStableName) {
  EXPECT_EQ(kiln::error_code_name(ErrorCode::cuda_error), "cuda_error");
  EXPECT_EQ(kiln::error_code_name(ErrorCode::cuda_unavailable), "cuda_unavailable");
  EXPECT_EQ(static_cast<int>(ErrorCode::cuda_error), static_cast<int>(ErrorCode::internal) + 1);
}

TEST(CudaDriver, StickyResultsAreTheFaults) {
  for (int fault : {700, 710, 714, 715, 716, 717, 718, 719}) {
    EXPECT_TRUE(kiln::detail::is_sticky_result(fault)) << fault;
  }
  for (int refusal : {0, 1, 2, 201, 209, 400, 701, 801}) {
    EXPECT_FALSE(kiln::detail::is_sticky_result(refusal)) << refusal;
  }
}

// --- On a GPU ---------------------------------------------------------------

bool have_gpu() {
  try {
    CudaDriver::get();
    return true;
  } catch (const kiln::Error& e) {
    if (e.code() != ErrorCode::cuda_unavailable) throw;
    return false;
  }
}

#define KILN_REQUIRE_GPU() \
  if (!have_gpu()) GTEST_SKIP() << "no CUDA driver or device"

// The launcher tests use the driver's own copy, looked up in the
// libcuda.so.1 the runtime already loaded.
void copy_to_host(void* host, void* device, size_t bytes) {
  void* library = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(library, nullptr);
  using CopyFn = int (*)(void*, unsigned long long, size_t);
  auto copy = reinterpret_cast<CopyFn>(::dlsym(library, "cuMemcpyDtoH_v2"));
  ASSERT_NE(copy, nullptr);
  ASSERT_EQ(copy(host, reinterpret_cast<uintptr_t>(device), bytes), 0);
  ::dlclose(library);
}

// fill@cuda:sm_75 with its PTX as its own blob: runs on every device the
// driver supports, as a cubin target on sm_7x and through PTX elsewhere.
CudaTestOptions gpu_package(uint32_t shared_bytes = 0) {
  CudaTestOptions o;
  o.targets = {"cuda:sm_75"};
  o.kernels_in_ptx = true;
  o.shared_bytes = shared_bytes;
  return o;
}

struct GpuFixture {
  explicit GpuFixture(const CudaTestOptions& o, kiln::OpenOptions options = {})
      : bytes(kiln_test::write_cuda_test_package(kiln_test::make_cuda_test_package(o))),
        reader(PackageReader::open_memory(kiln_test::as_bytes(bytes))),
        launcher(reader, options) {}
  std::vector<uint8_t> bytes;
  PackageReader reader;
  CudaLauncher launcher;
};

void run_fill(CudaLauncher& launcher, uint32_t shared_bytes) {
  const CudaDeviceInfo& info = launcher.device(0);
  ASSERT_EQ(info.target, 0u);
  const CudaLauncher::ContextScope scope = launcher.enter(0);
  void* fill = launcher.function(0, 0);
  ASSERT_NE(fill, nullptr);
  EXPECT_EQ(launcher.function(0, 0), fill);  // loaded once
  int64_t n = 1000;  // not a multiple of the block: the tail is bounds-checked
  float a = 0.5f;
  void* y = launcher.allocate(0, sizeof(float) * n, nullptr);
  ASSERT_EQ(reinterpret_cast<uintptr_t>(y) % 256, 0u);
  void* params[] = {&y, &n, &a};
  launcher.launch(0, fill, {{4, 1, 1}, {256, 1, 1}, shared_bytes}, nullptr, params, "fill",
                  "fill@cuda:sm_75");
  ASSERT_EQ(CudaDriver::get().cuStreamSynchronize(nullptr), 0);
  std::vector<float> host(n, -1.0f);
  copy_to_host(host.data(), y, sizeof(float) * n);
  launcher.deallocate(0, y, sizeof(float) * n, nullptr);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(host[i], 0.5f * static_cast<float>(i)) << i;
}

TEST(Gpu, DeviceInfoIsQueriedOnceAndNamesTheDevice) {
  KILN_REQUIRE_GPU();
  GpuFixture f(gpu_package());
  const CudaDeviceInfo& info = f.launcher.device(0);
  EXPECT_EQ(info.ordinal, 0);
  EXPECT_GE(info.compute_capability, 50);
  EXPECT_FALSE(info.name.empty());
  ASSERT_EQ(info.target, 0u);
  EXPECT_EQ(info.via_ptx, info.compute_capability / 10 != 7);
  EXPECT_EQ(&f.launcher.device(0), &info);
  std::cout << "cuda:0 is " << info.name << " (sm_" << info.compute_capability << "), driver "
            << CudaDriver::get().version << "\n";
}

TEST(Gpu, RunsAPtxKernelOnTheLegacyStream) {
  KILN_REQUIRE_GPU();
  GpuFixture f(gpu_package());
  run_fill(f.launcher, 0);
}

// The PTX assembled by ptxas for the device's own arch, so the cubin path
// runs too; skipped where no toolkit is installed.
TEST(Gpu, RunsACubinOfTheDevicesArch) {
  KILN_REQUIRE_GPU();
  const std::filesystem::path ptxas = KILN_TEST_PTXAS;
  if (ptxas.empty() || !std::filesystem::exists(ptxas)) GTEST_SKIP() << "no ptxas";
  const int cc = GpuFixture(gpu_package()).launcher.device(0).compute_capability;
  if (cc < 75 || cc > 120) GTEST_SKIP() << "sm_" << cc << " is not a Kiln target";
  const std::string arch = "sm_" + std::to_string(cc);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("kiln-cubin-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "fill.ptx") << kiln_test::kFillPtx;
  const std::string command = ptxas.string() + " -arch=" + arch + " -o " +
                              (dir / "fill.cubin").string() + " " + (dir / "fill.ptx").string();
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream in(dir / "fill.cubin", std::ios::binary);
  std::vector<uint8_t> cubin((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  ASSERT_GT(cubin.size(), 4u);
  ASSERT_EQ(cubin[0], 0x7f);  // an ELF image
  ASSERT_EQ(std::string(cubin.begin() + 1, cubin.begin() + 4), "ELF");

  CudaTestOptions o;
  o.targets = {"cuda:" + arch};
  o.ptx_for_newest = false;
  kiln_test::CudaTestPackage p = kiln_test::make_cuda_test_package(o);
  p.blobs[0].bytes = cubin;
  const std::vector<uint8_t> bytes = kiln_test::write_cuda_test_package(std::move(p));
  PackageReader reader = PackageReader::open_memory(kiln_test::as_bytes(bytes));
  CudaLauncher launcher(reader, {});
  EXPECT_FALSE(launcher.device(0).via_ptx);
  run_fill(launcher, 0);
}

TEST(Gpu, SynchronizingLaunchesRunToo) {
  KILN_REQUIRE_GPU();
  kiln::OpenOptions options;
  options.cuda_synchronize = true;
  GpuFixture f(gpu_package(), options);
  run_fill(f.launcher, 0);
}

TEST(Gpu, LargeDynamicSharedMemoryIsOptedInAtLoad) {
  KILN_REQUIRE_GPU();
  // Past the 48 KiB default: the launch fails unless function() raised the
  // kernel's limit from the manifest.
  GpuFixture f(gpu_package(64 * 1024));
  run_fill(f.launcher, 64 * 1024);
}

TEST(Gpu, ContextScopeRestoresTheCallersContext) {
  KILN_REQUIRE_GPU();
  GpuFixture f(gpu_package());
  const CudaDriver& cu = CudaDriver::get();
  kiln::detail::CUcontext before = nullptr;
  ASSERT_EQ(cu.cuCtxGetCurrent(&before), 0);
  kiln::detail::CUcontext inside = nullptr;
  {
    const CudaLauncher::ContextScope scope = f.launcher.enter(0);
    ASSERT_EQ(cu.cuCtxGetCurrent(&inside), 0);
    EXPECT_NE(inside, nullptr);
    {
      const CudaLauncher::ContextScope nested = f.launcher.enter(0);  // already current
      kiln::detail::CUcontext again = nullptr;
      ASSERT_EQ(cu.cuCtxGetCurrent(&again), 0);
      EXPECT_EQ(again, inside);
    }
    kiln::detail::CUcontext after_nested = nullptr;
    ASSERT_EQ(cu.cuCtxGetCurrent(&after_nested), 0);
    EXPECT_EQ(after_nested, inside);
  }
  kiln::detail::CUcontext after = nullptr;
  ASSERT_EQ(cu.cuCtxGetCurrent(&after), 0);
  EXPECT_EQ(after, before);
}

TEST(Gpu, ALaunchTheDriverRefusesIsACudaError) {
  KILN_REQUIRE_GPU();
  GpuFixture f(gpu_package());
  const CudaLauncher::ContextScope scope = f.launcher.enter(0);
  void* fill = f.launcher.function(0, 0);
  int64_t n = 0;
  float a = 1.0f;
  void* y = nullptr;
  void* params[] = {&y, &n, &a};
  try {
    f.launcher.launch(0, fill, {{1, 1, 1}, {4096, 1, 1}, 0}, nullptr, params, "fill",
                      "fill@cuda:sm_75");
    FAIL() << "a 4096-thread block was launched";
  } catch (const kiln::CudaError& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.code(), ErrorCode::cuda_error);
    EXPECT_EQ(e.graph(), "fill");
    EXPECT_EQ(e.kernel(), "fill@cuda:sm_75");
    EXPECT_NE(e.result(), 0);
    EXPECT_FALSE(kiln::detail::is_sticky_result(e.result()));
    EXPECT_EQ(message.rfind("kiln: graph 'fill', kernel 'fill@cuda:sm_75' on cuda:0: "
                            "cuLaunchKernel failed: CUDA_ERROR_",
                            0),
              0u)
        << message;
  }
  // A refused launch leaves the context usable.
  run_fill(f.launcher, 0);
}

// Which of the fill package's blobs the device loads: the kernel's own, or
// its ptx_blob when no cubin of the package runs there.
std::string info_blob(CudaLauncher& launcher) {
  return launcher.device(0).via_ptx ? "blob 1 (cuda:sm_75 PTX)" : "blob 0 (cuda:sm_75 PTX)";
}

TEST(Gpu, BadPtxIsKernelLoadFailedWithTheJitLog) {
  KILN_REQUIRE_GPU();
  CudaTestOptions o = gpu_package();
  o.ptx = ".version 7.0\n.target sm_75\n.address_size 64\n.visible .entry broken( {\n";
  GpuFixture f(o);
  try {
    f.launcher.function(0, 0);
    FAIL() << "broken PTX loaded";
  } catch (const kiln::Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kernel_load_failed);
    EXPECT_NE(message.find("kernel 'fill@cuda:sm_75'"), std::string::npos) << message;
    // Blob 1 is the PTX an sm_90 device loads, blob 0 the one an sm_7x loads.
    EXPECT_NE(message.find(info_blob(f.launcher)), std::string::npos) << message;
    EXPECT_NE(message.find("cuModuleLoadDataEx failed: CUDA_ERROR_"), std::string::npos) << message;
    std::cout << message << "\n";
  }
}

TEST(Gpu, AMissingEntryIsKernelLoadFailed) {
  KILN_REQUIRE_GPU();
  CudaTestOptions o = gpu_package();
  o.entry = "kiln_test_missing";
  GpuFixture f(o);
  try {
    f.launcher.function(0, 0);
    FAIL() << "a missing entry resolved";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kernel_load_failed);
    EXPECT_NE(std::string(e.what()).find("entry 'kiln_test_missing' not found"), std::string::npos)
        << e.what();
  }
}

TEST(Gpu, AnOrdinalTheMachineLacksIsInvalidArgument) {
  KILN_REQUIRE_GPU();
  GpuFixture f(gpu_package());
  for (int ordinal : {-1, kiln::detail::kMaxCudaDevices + 3}) {
    try {
      f.launcher.device(ordinal);
      FAIL() << ordinal;
    } catch (const kiln::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("but this machine has"), std::string::npos) << e.what();
    }
  }
}

TEST(Gpu, APackageForNewerDevicesSaysWhichTargetsItHas) {
  KILN_REQUIRE_GPU();
  CudaTestOptions o;
  o.targets = {"cuda:sm_120"};
  o.ptx_for_newest = false;
  GpuFixture f(o);
  const CudaDeviceInfo& info = f.launcher.device(0);
  if (info.compute_capability >= 120) GTEST_SKIP() << "cuda:0 runs sm_120";
  EXPECT_EQ(info.target, std::nullopt);
  try {
    f.launcher.throw_no_target(info);
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kernel_load_failed);
    EXPECT_NE(std::string(e.what()).find("none of the package's CUDA targets (cuda:sm_120) runs "
                                         "on it"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(f.launcher.function(0, 0), kiln::Error);
  // The context is still usable: the JIT may compile for this device.
  EXPECT_NO_THROW(f.launcher.enter(0));
}

TEST(Gpu, ResultTextNamesTheResult) {
  KILN_REQUIRE_GPU();
  EXPECT_EQ(kiln::detail::result_text(700),
            "CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)");
  EXPECT_EQ(kiln::detail::result_text(123456), "CUresult 123456");
}

// Leaves the context unusable for the rest of the process, so it runs only
// when asked for: --gtest_also_run_disabled_tests --gtest_filter=*Fault*.
TEST(Gpu, DISABLED_AFaultNamesItsKernelWhenSynchronizing) {
  KILN_REQUIRE_GPU();
  kiln::OpenOptions options;
  options.cuda_synchronize = true;
  GpuFixture f(gpu_package(), options);
  const CudaLauncher::ContextScope scope = f.launcher.enter(0);
  void* fill = f.launcher.function(0, 0);
  int64_t n = 1024;
  float a = 1.0f;
  // An address no allocation covers.
  void* y = reinterpret_cast<void*>(uintptr_t{0x100});  // NOLINT(performance-no-int-to-ptr)
  void* params[] = {&y, &n, &a};
  try {
    f.launcher.launch(0, fill, {{4, 1, 1}, {256, 1, 1}, 0}, nullptr, params, "fill", "bad");
    FAIL() << "the fault went unnoticed";
  } catch (const kiln::CudaError& e) {
    EXPECT_EQ(e.kernel(), "bad");
    EXPECT_TRUE(kiln::detail::is_sticky_result(e.result())) << e.what();
    std::cout << e.what() << "\n";
  }
  try {
    f.launcher.launch(0, fill, {{4, 1, 1}, {256, 1, 1}, 0}, nullptr, params, "fill", "next");
    FAIL() << "a launch after a fault went through";
  } catch (const kiln::CudaError& e) {
    EXPECT_NE(std::string(e.what()).find("an earlier kernel on this context faulted"),
              std::string::npos)
        << e.what();
    std::cout << e.what() << "\n";
  }
}

}  // namespace
