// Packages built to hurt the reader (issue 16, item 3): a small file that
// claims a huge decompressed size or file size, a call whose plan asks for
// more memory than exists. Each must be a typed kiln::Error, raised before
// the memory is allocated, from the library and from the CLI alike.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/abi/package_header.h"
#include "kiln/compiler/package_writer.h"
#include "kiln/error.h"
#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "kiln/support/process.h"
#include "test_support/cpu_test_package.h"
#include "test_support/package_bytes.h"
#include "test_support/scratch_files.h"

namespace {

namespace fb = kiln::fb;
namespace fs = std::filesystem;
using kiln::ErrorCode;
using kiln::PackageReader;

constexpr uint64_t kGiB = uint64_t{1} << 30;

// A valid zstd frame of `size` zero bytes (a multiple of 128 KiB), written
// by hand: the 4-byte magic, a single-segment header with the 8-byte
// content size, then one RLE block per 128 KiB. 1 GiB takes 32 KiB.
std::vector<uint8_t> zstd_frame_of_zeros(uint64_t size) {
  constexpr uint32_t kBlock = 128 * 1024;
  std::vector<uint8_t> frame = {0x28, 0xB5, 0x2F, 0xFD, 0xE0};
  for (int i = 0; i < 8; ++i) frame.push_back(static_cast<uint8_t>(size >> (8 * i)));
  for (uint64_t done = 0; done < size; done += kBlock) {
    const uint32_t last = done + kBlock >= size ? 1 : 0;
    const uint32_t header = last | (1u << 1) | (kBlock << 3);  // RLE block of kBlock bytes
    for (int i = 0; i < 3; ++i) frame.push_back(static_cast<uint8_t>(header >> (8 * i)));
    frame.push_back(0);
  }
  return frame;
}

using kiln_test::fix_checksum;
using kiln_test::header_of;

// The test package with one more blob: a zstd frame of `raw_size` zeros
// (stored as written, so its hash is right), the manifest saying so.
std::vector<uint8_t> package_with_zstd_bomb(uint64_t raw_size) {
  std::vector<kiln::compiler::BlobInput> blobs = kiln_test::test_blobs();
  blobs.push_back({fb::BlobKind::Source, 0, zstd_frame_of_zeros(raw_size), /*compress=*/false});
  std::vector<uint8_t> bytes = kiln::compiler::write_package(
      kiln_test::make_test_manifest({kiln_test::TestGraphOptions{}}), std::move(blobs));
  // The writer stored it raw: say it is zstd of raw_size bytes, which it is.
  kiln_test::rewrite_manifest(bytes, [&](fb::ManifestT& m) {
    m.blobs.back()->compression = fb::Compression::Zstd;
    m.blobs.back()->raw_size = raw_size;
  });
  return bytes;
}

fs::path write_file(const std::string& name, const std::vector<uint8_t>& bytes) {
  const fs::path path = kiln_test::fresh_dir("hostile_package") / name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return path;
}

// The ErrorCode that opening `bytes` throws, or nullopt when they open.
std::optional<ErrorCode> open_error(const std::vector<uint8_t>& bytes,
                                    const kiln::PackageLimits& limits = {}) {
  try {
    PackageReader::open_memory(kiln_test::as_bytes(bytes), limits);
  } catch (const kiln::Error& e) {
    return e.code();
  }
  return std::nullopt;
}

TEST(HostilePackage, AZstdFrameClaimingAGibibyteIsRefusedAtOpen) {
  const std::vector<uint8_t> bytes = package_with_zstd_bomb(kGiB);
  ASSERT_LT(bytes.size(), 64u * 1024);  // a small file: the frame is 32 KiB
  try {
    PackageReader::open_memory(kiln_test::as_bytes(bytes));
    FAIL() << "a package whose blobs decompress to 1 GiB opened under the default limit";
  } catch (const kiln::PackageError& e) {
    EXPECT_EQ(e.code(), ErrorCode::resource_limit) << e.what();
    const std::string message = e.what();
    EXPECT_NE(message.find("over the limit of 268435456"), std::string::npos) << message;
    EXPECT_NE(message.find("max_decompressed_bytes"), std::string::npos) << message;
  }
  // The same through Package::open_memory, which takes the limits from its
  // options: raised above the claim, the package opens (nothing is
  // decompressed before a blob is used).
  EXPECT_THROW(kiln::Package::open_memory(kiln_test::as_bytes(bytes)), kiln::PackageError);
  kiln::OpenOptions generous;
  generous.limits.max_decompressed_bytes = 2 * kGiB;
  EXPECT_NO_THROW(kiln::Package::open_memory(kiln_test::as_bytes(bytes), generous));
}

TEST(HostilePackage, TheDecompressedLimitCountsEveryBlob) {
  const std::vector<uint8_t> bytes = kiln_test::make_test_package({kiln_test::TestGraphOptions{}});
  const PackageReader reader = PackageReader::open_memory(kiln_test::as_bytes(bytes));
  uint64_t total = 0;
  for (const fb::Blob* blob : *reader.manifest().blobs()) {
    if (blob->compression() != fb::Compression::None) total += blob->raw_size();
  }
  ASSERT_GT(total, 0u);
  kiln::PackageLimits exact;
  exact.max_decompressed_bytes = total;
  EXPECT_EQ(open_error(bytes, exact), std::nullopt);
  kiln::PackageLimits short_by_one;
  short_by_one.max_decompressed_bytes = total - 1;
  EXPECT_EQ(open_error(bytes, short_by_one), ErrorCode::resource_limit);
  kiln::PackageLimits small_file;
  small_file.max_file_bytes = bytes.size() - 1;
  EXPECT_EQ(open_error(bytes, small_file), ErrorCode::resource_limit);
}

// Runs `body` in a child whose address space is capped at 512 MiB and
// returns what it wrote to its pipe ("crashed" when it died instead).
std::string in_capped_child(const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const rlimit cap{512u << 20, 512u << 20};
    ::setrlimit(RLIMIT_AS, &cap);
    const std::string result = body();
    if (::write(fds[1], result.data(), result.size()) < 0) ::_exit(2);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string result;
  char buffer[256];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) result.append(buffer, n);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "crashed: " + result;
  return result;
}

std::string open_file_outcome(const fs::path& path) {
  try {
    PackageReader::open_file(path);
    return "opened";
  } catch (const kiln::Error& e) {
    return std::string(kiln::error_code_name(e.code()));
  } catch (const std::exception& e) {
    return std::string("untyped: ") + e.what();
  }
}

TEST(HostilePackage, AFileIsJudgedByItsHeaderBeforeItIsRead) {
  // 4 GiB files that take no disk (sparse): one without the magic, one
  // whose header is a package's and says 4 GiB. A reader that allocates
  // the file before its header checks runs out of the child's 512 MiB.
  const fs::path dir = kiln_test::fresh_dir("hostile_package_sparse");
  const fs::path zeros = dir / "zeros.kiln";
  const fs::path huge = dir / "huge.kiln";
  std::vector<uint8_t> package = kiln_test::make_test_package({kiln_test::TestGraphOptions{}});
  KilnPackageHeader h = header_of(package);
  h.file_size = 4 * kGiB;
  std::memcpy(package.data(), &h, sizeof h);
  std::ofstream(huge, std::ios::binary)
      .write(reinterpret_cast<const char*>(package.data()),
             static_cast<std::streamsize>(package.size()));
  std::ofstream(zeros, std::ios::binary).put(0);
  fs::resize_file(zeros, 4 * kGiB);
  fs::resize_file(huge, 4 * kGiB);
  EXPECT_EQ(in_capped_child([&] { return open_file_outcome(zeros); }), "package_bad_magic");
  EXPECT_EQ(in_capped_child([&] { return open_file_outcome(huge); }), "resource_limit");
  fs::remove_all(dir);
}

TEST(HostilePackage, RunningOutOfMemoryInACallIsAResourceLimitError) {
  // The temp of scale_add_temp's general specialization declared at 2^61
  // elements: 2^63 bytes, which no allocator gives.
  kiln_test::TestGraphOptions options;
  options.use_temp = true;
  options.static_n8 = false;
  fb::ManifestT manifest = kiln_test::make_test_manifest({options});
  auto& temp = manifest.graphs[0]->specializations[0]->plan->buffers.back();
  ASSERT_EQ(temp->role, fb::BufferRole::Temp);
  temp->numel = kiln_test::expr({kiln_test::constant(int64_t{1} << 61)});
  const std::vector<uint8_t> bytes =
      kiln::compiler::write_package(std::move(manifest), kiln_test::test_blobs());
  kiln::Package package = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
  std::vector<float> x(4 * kiln_test::kRowWidth), w(kiln_test::kRowWidth), y(x.size());
  try {
    package.graph(options.name)
        .call({kiln::TensorView(x.data(), kiln::DType::f32, {4, kiln_test::kRowWidth}),
               kiln::TensorView(w.data(), kiln::DType::f32, {kiln_test::kRowWidth})},
              {kiln::TensorView(y.data(), kiln::DType::f32, {4, kiln_test::kRowWidth})});
    FAIL() << "a 2^63-byte temp was allocated";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::resource_limit) << e.what();
    EXPECT_NE(std::string(e.what()).find("graph 'scale_add'"), std::string::npos) << e.what();
  }
}

// A package whose plans lie about their sizes, as `mutate` makes them (the
// test kernels; each graph a static n=8 and a general specialization).
std::vector<uint8_t> lying_package(
    const kiln_test::TestGraphOptions& options,
    const std::function<void(fb::LaunchPlanT& plan, bool general)>& mutate) {
  fb::ManifestT manifest = kiln_test::make_test_manifest({options});
  for (auto& spec : manifest.graphs[0]->specializations) {
    mutate(*spec->plan, spec->name == "general");
  }
  return kiln::compiler::write_package(std::move(manifest), kiln_test::test_blobs());
}

std::string open_message(const std::vector<uint8_t>& bytes) {
  try {
    PackageReader::open_memory(kiln_test::as_bytes(bytes));
  } catch (const kiln::PackageError& e) {
    return std::string(kiln::error_code_name(e.code())) + ": " + e.what();
  }
  return "opened";
}

// Calls the scale_add graph of `bytes` on `rows` rows: "ran" or the error.
std::string call_outcome(const std::vector<uint8_t>& bytes, int64_t rows) {
  try {
    kiln::Package package = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
    std::vector<float> x(static_cast<size_t>(rows * kiln_test::kRowWidth)), w(kiln_test::kRowWidth),
        y(x.size());
    package.graph("scale_add")
        .call({kiln::TensorView(x.data(), kiln::DType::f32, {rows, kiln_test::kRowWidth}),
               kiln::TensorView(w.data(), kiln::DType::f32, {kiln_test::kRowWidth})},
              {kiln::TensorView(y.data(), kiln::DType::f32, {rows, kiln_test::kRowWidth})});
    return "ran";
  } catch (const kiln::Error& e) {
    return std::string(kiln::error_code_name(e.code())) + ": " + e.what();
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(HostilePackage, MoreWorkItemsThanTheBuffersHoldIsRefusedAtOpen) {
  // scale_add's one launch runs n * 64 work items over buffers of n * 64
  // elements: one more (a changed byte of the constant) and the kernel
  // writes past y. Each specialization is checked at open: n=8 at its
  // value, general at n's least value.
  const std::vector<uint8_t> bytes = lying_package({}, [](fb::LaunchPlanT& plan, bool general) {
    if (!general) plan.launches[0]->work_items->ops[1] = kiln_test::constant(65);
  });
  const std::string message = open_message(bytes);
  EXPECT_TRUE(contains(message, "package_corrupt: ")) << message;
  EXPECT_TRUE(contains(message,
                       "specialization 'n=8' launch 0 has 520 work items at n=8, "
                       "expected 0 to 512, the elements of the largest buffer it binds"))
      << message;
  const std::vector<uint8_t> general = lying_package({}, [](fb::LaunchPlanT& plan, bool g) {
    if (g) plan.launches[0]->work_items->ops[1] = kiln_test::constant(65);
  });
  EXPECT_TRUE(contains(open_message(general),
                       "specialization 'general' launch 0 has 65 work "
                       "items at n=1, expected 0 to 64"))
      << open_message(general);
  // kiln verify reports the same.
  const fs::path path = write_file("lying.kiln", bytes);
  const kiln::support::ProcessResult r =
      kiln::support::run_process({KILN_TEST_KILN_CLI, "verify", path.string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(r.output.starts_with("error[package_corrupt]: ") &&
              contains(r.output, "launch 0 has 520 work items"))
      << r.output;
}

TEST(HostilePackage, APlanThatLiesOnlyAtSomeSizesIsRefusedByTheCall) {
  // General's work items as n * n: within the n * 64 elements up to n = 64,
  // past them beyond. Open checks n = 1; the call checks its own n.
  const std::vector<uint8_t> bytes = lying_package({}, [](fb::LaunchPlanT& plan, bool general) {
    if (general) {
      plan.launches[0]->work_items = kiln_test::expr(
          {kiln_test::symbol(0), kiln_test::symbol(0), kiln_test::op(fb::ExprOpKind::Mul)});
    }
  });
  EXPECT_EQ(open_message(bytes), "opened");
  EXPECT_EQ(call_outcome(bytes, 4), "ran");
  const std::string outcome = call_outcome(bytes, 100);
  EXPECT_TRUE(contains(outcome,
                       "package_corrupt: kiln: graph 'scale_add' specialization "
                       "'general': launch 0 has 10000 work items, expected 0 to 6400"))
      << outcome;
  EXPECT_TRUE(contains(outcome, " at n=100")) << outcome;
}

TEST(HostilePackage, BufferSizesAndDtypesMustBeTheirTensors) {
  // y declared with half its elements; x declared as f16.
  const std::vector<uint8_t> short_y = lying_package({}, [](fb::LaunchPlanT& plan, bool) {
    plan.buffers[2]->numel->ops[1] = kiln_test::constant(32);
  });
  EXPECT_TRUE(contains(open_message(short_y),
                       "buffer 2 (output 0 'y') declares 256 elements, but the tensor has 512 "
                       "at n=8"))
      << open_message(short_y);
  const std::vector<uint8_t> f16_x = lying_package(
      {}, [](fb::LaunchPlanT& plan, bool) { plan.buffers[0]->dtype = fb::DType::F16; });
  EXPECT_TRUE(
      contains(open_message(f16_x), "buffer 0 (input 0 'x') is f16, expected the tensor's f32"))
      << open_message(f16_x);
  // An honest package passes, and its calls run.
  const std::vector<uint8_t> honest = lying_package({}, [](fb::LaunchPlanT&, bool) {});
  EXPECT_EQ(open_message(honest), "opened");
  EXPECT_EQ(call_outcome(honest, 8), "ran");
  EXPECT_EQ(call_outcome(honest, 100), "ran");
}

TEST(HostilePackage, VerifyReportsTheLimitAndDoesNotAbort) {
  const fs::path path = write_file("bomb.kiln", package_with_zstd_bomb(kGiB));
  const kiln::support::ProcessResult r =
      kiln::support::run_process({KILN_TEST_KILN_CLI, "verify", path.string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.output.rfind("error[resource_limit]: kiln: package blobs decompress to ", 0), 0u)
      << r.output;
}

}  // namespace
