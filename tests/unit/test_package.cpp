// The package format: writer and reader round trip, determinism, and every
// corruption class giving its own ErrorCode (never a crash).
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/package_writer.h"
#include "kiln/error.h"
#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "test_support/cpu_test_package.h"
#include "test_support/cuda_test_package.h"
#include "test_support/package_bytes.h"

namespace {

using kiln::ErrorCode;
using kiln::PackageReader;
namespace fb = kiln::fb;
using kiln::compiler::BlobInput;
using kiln::compiler::write_package;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng() % 255 + 1);  // never zero
  return v;
}

// A manifest with two graphs given out of order, a Source blob and two
// CPU shared-object stand-ins: one that compresses, one that does not.
struct Fixture {
  fb::ManifestT manifest;
  std::vector<BlobInput> blobs;
};

Fixture make_fixture() {
  Fixture f;
  kiln_test::TestGraphOptions b;
  b.name = "zeta";
  kiln_test::TestGraphOptions a;
  a.name = "alpha";
  a.use_temp = true;
  f.manifest = kiln_test::make_test_manifest({b, a}, {"cpu:x86-64", "cpu:x86-64-v3"});
  std::vector<uint8_t> compressible(10000);
  for (size_t i = 0; i < compressible.size(); ++i)
    compressible[i] = static_cast<uint8_t>(i % 7 + 1);
  f.blobs.push_back({fb::BlobKind::CpuSharedObject, 0, compressible});
  f.blobs.push_back({fb::BlobKind::CpuSharedObject, 1, random_bytes(5000, 7)});
  f.blobs.push_back({fb::BlobKind::Source, 0, random_bytes(100, 9), /*compress=*/false});
  f.manifest.kernels[0]->source_blob = 2;
  return f;
}

std::vector<uint8_t> fixture_package() {
  Fixture f = make_fixture();
  return write_package(std::move(f.manifest), std::move(f.blobs));
}

ErrorCode open_error(const std::vector<uint8_t>& bytes) {
  try {
    PackageReader::open_memory(kiln_test::as_bytes(bytes));
  } catch (const kiln::PackageError& e) {
    return e.code();
  }
  ADD_FAILURE() << "the package opened";
  return ErrorCode::internal;
}

std::string open_message(const std::vector<uint8_t>& bytes) {
  try {
    PackageReader::open_memory(kiln_test::as_bytes(bytes));
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}

using kiln_test::fix_checksum;
using kiln_test::header_of;
using kiln_test::rewrite_manifest;

TEST(PackageWriter, RoundTripsEveryField) {
  Fixture f = make_fixture();
  const std::vector<uint8_t> compressible = f.blobs[0].bytes;
  const std::vector<uint8_t> incompressible = f.blobs[1].bytes;
  const std::vector<uint8_t> source = f.blobs[2].bytes;
  fb::ManifestT expected = f.manifest;  // deep copy, before the writer sorts and fills blobs
  const std::vector<uint8_t> bytes = write_package(std::move(f.manifest), std::move(f.blobs));

  PackageReader reader = PackageReader::open_memory(kiln_test::as_bytes(bytes));
  const KilnPackageHeader& h = reader.header();
  EXPECT_EQ(0, std::memcmp(h.magic, "KILNPKG\0", 8));
  EXPECT_EQ(h.format_major, KILN_PACKAGE_FORMAT_MAJOR);
  EXPECT_EQ(h.format_minor, KILN_PACKAGE_FORMAT_MINOR);
  EXPECT_EQ(h.header_size, 192u);  // with the (empty) signature block
  EXPECT_EQ(h.manifest_offset, 192u);
  EXPECT_EQ(h.file_size, bytes.size());

  fb::ManifestT actual;
  reader.manifest().UnPackTo(&actual);
  // Graphs come back sorted by name; everything else as given.
  ASSERT_EQ(actual.graphs.size(), 2u);
  EXPECT_EQ(actual.graphs[0]->name, "alpha");
  EXPECT_EQ(actual.graphs[1]->name, "zeta");
  EXPECT_TRUE(*actual.graphs[0] == *expected.graphs[1]);
  EXPECT_TRUE(*actual.graphs[1] == *expected.graphs[0]);
  ASSERT_EQ(actual.targets.size(), 2u);
  for (size_t t = 0; t < 2; ++t) EXPECT_TRUE(*actual.targets[t] == *expected.targets[t]);
  ASSERT_EQ(actual.kernels.size(), expected.kernels.size());
  for (size_t k = 0; k < actual.kernels.size(); ++k) {
    EXPECT_TRUE(*actual.kernels[k] == *expected.kernels[k]) << k;
  }
  EXPECT_EQ(actual.kernels[0]->source_blob, 2);
  ASSERT_TRUE(actual.provenance);
  EXPECT_TRUE(*actual.provenance == *expected.provenance);
  EXPECT_EQ(actual.graphs[0]->specializations[1]->symbol_values, std::vector<int64_t>{-1});
  EXPECT_EQ(actual.graphs[0]->symbols[0]->hot, std::vector<int64_t>{8});

  ASSERT_EQ(actual.blobs.size(), 3u);
  EXPECT_EQ(actual.blobs[0]->compression, fb::Compression::Zstd);
  EXPECT_LT(actual.blobs[0]->stored_size, compressible.size());
  EXPECT_EQ(actual.blobs[0]->raw_size, compressible.size());
  EXPECT_EQ(actual.blobs[1]->compression, fb::Compression::None);  // random bytes do not shrink
  EXPECT_EQ(actual.blobs[1]->stored_size, incompressible.size());
  EXPECT_EQ(actual.blobs[2]->compression, fb::Compression::None);  // compress = false
  EXPECT_EQ(actual.blobs[2]->kind, fb::BlobKind::Source);
  EXPECT_EQ(actual.blobs[1]->target, 1u);
  uint64_t previous_end = h.manifest_offset + h.manifest_size;
  for (const auto& blob : actual.blobs) {
    EXPECT_EQ(blob->offset % 64, 0u);
    EXPECT_GE(blob->offset, previous_end);
    previous_end = blob->offset + blob->stored_size;
    ASSERT_TRUE(blob->hash);
  }
  auto equals = [](std::span<const std::byte> got, const std::vector<uint8_t>& want) {
    return got.size() == want.size() && std::memcmp(got.data(), want.data(), want.size()) == 0;
  };
  EXPECT_TRUE(equals(reader.blob(0), compressible));
  EXPECT_TRUE(equals(reader.blob(1), incompressible));
  EXPECT_TRUE(equals(reader.blob(2), source));
  EXPECT_TRUE(equals(reader.blob(0), compressible));  // cached
  EXPECT_NO_THROW(reader.verify_all_blobs());
  // Padding between blobs is zero.
  for (uint64_t i = actual.blobs[0]->offset + actual.blobs[0]->stored_size;
       i < actual.blobs[1]->offset; ++i) {
    EXPECT_EQ(bytes[i], 0) << i;
  }
}

TEST(PackageWriter, IsDeterministic) {
  EXPECT_EQ(fixture_package(), fixture_package());
  // Graph order in the input does not matter either.
  Fixture f = make_fixture();
  std::swap(f.manifest.graphs[0], f.manifest.graphs[1]);
  EXPECT_EQ(write_package(std::move(f.manifest), std::move(f.blobs)), fixture_package());
}

TEST(PackageWriter, RejectsDuplicateGraphNamesAndPrefilledBlobs) {
  Fixture f = make_fixture();
  f.manifest.graphs[1]->name = f.manifest.graphs[0]->name;
  EXPECT_THROW(write_package(std::move(f.manifest), {}), std::invalid_argument);
  Fixture g = make_fixture();
  g.manifest.blobs.push_back(std::make_unique<fb::BlobT>());
  EXPECT_THROW(write_package(std::move(g.manifest), {}), std::invalid_argument);
}

TEST(PackageWriter, WritesFilesAtomically) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("kiln-pkg-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / "fixture.kiln";
  Fixture f = make_fixture();
  kiln::compiler::write_package_file(path, std::move(f.manifest), std::move(f.blobs));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1);  // no temp file left behind
  PackageReader reader = PackageReader::open_file(path);
  EXPECT_EQ(reader.file_bytes().size(), fixture_package().size());
  std::filesystem::remove_all(dir);
}

TEST(PackageReader, MissingFileIsAnIoError) {
  try {
    PackageReader::open_file("/nonexistent/kiln/package.kiln");
    FAIL();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/kiln/package.kiln"), std::string::npos);
  }
}

TEST(PackageCorruption, BadMagic) {
  std::vector<uint8_t> bytes = fixture_package();
  bytes[3] = 'X';
  EXPECT_EQ(open_error(bytes), ErrorCode::package_bad_magic);
  std::vector<uint8_t> text(100, 'a');
  EXPECT_EQ(open_error(text), ErrorCode::package_bad_magic);
}

TEST(PackageCorruption, NewerMajorIsRefusedNewerMinorIsRead) {
  std::vector<uint8_t> bytes = fixture_package();
  KilnPackageHeader h = header_of(bytes);
  h.format_major = KILN_PACKAGE_FORMAT_MAJOR + 1;
  std::memcpy(bytes.data(), &h, sizeof h);
  EXPECT_EQ(open_error(bytes), ErrorCode::package_unsupported_version);
  const std::string message = open_message(bytes);
  EXPECT_NE(message.find("format 2." + std::to_string(KILN_PACKAGE_FORMAT_MINOR)),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("reads format 1."), std::string::npos) << message;

  std::vector<uint8_t> minor = fixture_package();
  h = header_of(minor);
  h.format_minor = KILN_PACKAGE_FORMAT_MINOR + 3;
  h.flags = 0x8000;  // unknown flags are ignored
  std::memcpy(minor.data(), &h, sizeof h);
  EXPECT_NO_THROW(PackageReader::open_memory(kiln_test::as_bytes(minor)));
}

TEST(PackageCorruption, Truncated) {
  const std::vector<uint8_t> bytes = fixture_package();
  for (size_t cut : {size_t{0}, size_t{4}, size_t{30}, size_t{63}, size_t{64}, size_t{200},
                     bytes.size() / 2, bytes.size() - 1}) {
    std::vector<uint8_t> part(bytes.begin(), bytes.begin() + cut);
    EXPECT_EQ(open_error(part), ErrorCode::package_truncated) << "cut at " << cut;
  }
  std::vector<uint8_t> part(bytes.begin(), bytes.end() - 10);
  const std::string message = open_message(part);
  EXPECT_NE(message.find(std::to_string(bytes.size())), std::string::npos) << message;
  EXPECT_NE(message.find(std::to_string(bytes.size() - 10)), std::string::npos) << message;
}

TEST(PackageCorruption, TrailingBytes) {
  std::vector<uint8_t> bytes = fixture_package();
  bytes.push_back(1);
  EXPECT_EQ(open_error(bytes), ErrorCode::package_corrupt);
}

TEST(PackageCorruption, ChecksumMismatchInManifestAndBlob) {
  std::vector<uint8_t> manifest_flip = fixture_package();
  manifest_flip[header_of(manifest_flip).manifest_offset + 40] ^= 0x10;
  EXPECT_EQ(open_error(manifest_flip), ErrorCode::package_checksum_mismatch);

  std::vector<uint8_t> blob_flip = fixture_package();
  blob_flip[blob_flip.size() - 5] ^= 0x01;
  EXPECT_EQ(open_error(blob_flip), ErrorCode::package_checksum_mismatch);
}

TEST(PackageCorruption, BlobHashCatchesAFlipBehindAFixedChecksum) {
  std::vector<uint8_t> bytes = fixture_package();
  PackageReader pristine = PackageReader::open_memory(kiln_test::as_bytes(bytes));
  const uint64_t offset = pristine.manifest().blobs()->Get(1)->offset();
  bytes[offset + 10] ^= 0x01;
  fix_checksum(bytes);
  PackageReader reader = PackageReader::open_memory(kiln_test::as_bytes(bytes));
  EXPECT_NO_THROW(reader.blob(0));  // other blobs are fine
  try {
    reader.blob(1);
    FAIL() << "blob 1 read";
  } catch (const kiln::PackageError& e) {
    EXPECT_EQ(e.code(), ErrorCode::package_checksum_mismatch);
    EXPECT_NE(std::string(e.what()).find("blob 1"), std::string::npos);
  }
  EXPECT_THROW(reader.verify_all_blobs(), kiln::PackageError);
}

TEST(PackageCorruption, CompressedBlobThatDoesNotDecompress) {
  std::vector<uint8_t> bytes = fixture_package();
  rewrite_manifest(bytes, [](fb::ManifestT& m) { m.blobs[0]->raw_size += 1; });
  PackageReader reader = PackageReader::open_memory(kiln_test::as_bytes(bytes));
  try {
    reader.blob(0);
    FAIL();
  } catch (const kiln::PackageError& e) {
    EXPECT_EQ(e.code(), ErrorCode::package_corrupt);
  }
}

TEST(PackageCorruption, VerifierFailure) {
  // Garbage where the manifest was, with a valid checksum.
  std::vector<uint8_t> bytes = fixture_package();
  const KilnPackageHeader h = header_of(bytes);
  const std::vector<uint8_t> junk = random_bytes(h.manifest_size, 42);
  std::memcpy(bytes.data() + h.manifest_offset, junk.data(), junk.size());
  fix_checksum(bytes);
  EXPECT_EQ(open_error(bytes), ErrorCode::package_verifier_failed);

  // A root offset pointing out of the manifest, identifier intact.
  std::vector<uint8_t> root = fixture_package();
  const uint32_t far = 0x7FFFFFF0;
  std::memcpy(root.data() + h.manifest_offset, &far, sizeof far);
  fix_checksum(root);
  EXPECT_EQ(open_error(root), ErrorCode::package_verifier_failed);

  // A valid FlatBuffer without the "KILN" identifier.
  std::vector<uint8_t> ident = fixture_package();
  ident[h.manifest_offset + 4] = 'X';
  fix_checksum(ident);
  EXPECT_EQ(open_error(ident), ErrorCode::package_verifier_failed);
}

TEST(PackageCorruption, UnknownTarget) {
  for (const char* name : {"cpu:riscv64", "cuda:sm_49", "cuda:sm_121", "gpu:sm_90", "cuda:sm_9"}) {
    Fixture f = make_fixture();
    f.manifest.targets[1]->name = name;
    const auto bytes = write_package(std::move(f.manifest), std::move(f.blobs));
    EXPECT_EQ(open_error(bytes), ErrorCode::package_unknown_target) << name;
    EXPECT_NE(open_message(bytes).find(name), std::string::npos);
  }
  EXPECT_TRUE(kiln::is_known_target_name("cuda:sm_90"));
  EXPECT_TRUE(kiln::is_known_target_name("cuda:sm_120"));
  EXPECT_TRUE(kiln::is_known_target_name("cpu:x86-64-v4"));
}

TEST(PackageCorruption, SemanticChecks) {
  struct Case {
    const char* what;
    std::function<void(fb::ManifestT&)> mutate;
  };
  const std::vector<Case> cases = {
      {"blob offset past the end", [](fb::ManifestT& m) { m.blobs[2]->offset = 1ull << 40; }},
      {"blob offset not aligned", [](fb::ManifestT& m) { m.blobs[1]->offset += 8; }},
      {"blob overlapping the manifest", [](fb::ManifestT& m) { m.blobs[0]->offset = 64; }},
      {"blob stored size past the end", [](fb::ManifestT& m) { m.blobs[2]->stored_size += 4096; }},
      {"kernel blob index", [](fb::ManifestT& m) { m.kernels[0]->blob = 9; }},
      {"kernel target index", [](fb::ManifestT& m) { m.kernels[0]->target = 5; }},
      {"kernel source blob", [](fb::ManifestT& m) { m.kernels[0]->source_blob = 3; }},
      {"PTX blob on a CPU kernel", [](fb::ManifestT& m) { m.kernels[0]->ptx_blob = 2; }},
      {"launch kernel index",
       [](fb::ManifestT& m) { m.graphs[0]->specializations[0]->plan->launches[0]->kernel = 77; }},
      {"specialization target",
       [](fb::ManifestT& m) { m.graphs[0]->specializations[0]->target = 2; }},
      {"guard tensor index",
       [](fb::ManifestT& m) { m.graphs[0]->specializations[0]->guards[0]->tensor = 3; }},
      {"guard symbol index",
       [](fb::ManifestT& m) {
         for (auto& g : m.graphs[1]->specializations[1]->guards) {
           if (g->kind == fb::GuardKind::SymbolRange) g->symbol = 1;
         }
       }},
      {"buffer index in launch",
       [](fb::ManifestT& m) {
         m.graphs[1]->specializations[1]->plan->launches[0]->buffers[0] = 99;
       }},
      {"graphs not sorted", [](fb::ManifestT& m) { m.graphs[1]->name = "aaaa"; }},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> bytes = fixture_package();
    rewrite_manifest(bytes, c.mutate);
    EXPECT_EQ(open_error(bytes), ErrorCode::package_corrupt)
        << c.what << ": " << open_message(bytes);
  }
}

TEST(PackageCorruption, CudaKernelsAndLaunches) {
  struct Case {
    const char* what;
    std::function<void(fb::ManifestT&)> mutate;
    const char* says;
  };
  // make_cuda_test_package(): targets sm_80 (kernel 0, cubin blob 0) and
  // sm_90 (kernel 1, cubin blob 1, PTX blob 2).
  const std::vector<Case> cases = {
      {"PTX blob index", [](fb::ManifestT& m) { m.kernels[1]->ptx_blob = 9; }, "PTX blob 9"},
      {"negative PTX blob", [](fb::ManifestT& m) { m.kernels[1]->ptx_blob = -2; }, "PTX blob -2"},
      {"PTX blob of another target", [](fb::ManifestT& m) { m.kernels[0]->ptx_blob = 2; },
       "which is not PTX of target 0"},
      {"PTX blob that is a cubin", [](fb::ManifestT& m) { m.kernels[1]->ptx_blob = 1; },
       "which is not PTX of target 1"},
      {"two grid dims",
       [](fb::ManifestT& m) {
         m.graphs[0]->specializations[0]->plan->launches[0]->grid.pop_back();
       },
       "has 2 grid and 3 block dimensions instead of 3"},
      {"four block dims",
       [](fb::ManifestT& m) {
         m.graphs[0]->specializations[1]->plan->launches[0]->block = {64, 1, 1, 1};
       },
       "has 3 grid and 4 block dimensions"},
      {"no block",
       [](fb::ManifestT& m) { m.graphs[0]->specializations[1]->plan->launches[0]->block.clear(); },
       "has 3 grid and 0 block dimensions"},
      {"zero block dim",
       [](fb::ManifestT& m) {
         m.graphs[0]->specializations[0]->plan->launches[0]->block = {256, 0, 1};
       },
       "block[1] is 0"},
      {"too many threads",
       [](fb::ManifestT& m) {
         m.graphs[0]->specializations[0]->plan->launches[0]->block = {32, 32, 2};
       },
       "2048 threads per block, more than 1024"},
  };
  for (const Case& c : cases) {
    kiln_test::CudaTestPackage p = kiln_test::make_cuda_test_package();
    c.mutate(p.manifest);
    const std::vector<uint8_t> bytes = kiln_test::write_cuda_test_package(std::move(p));
    EXPECT_EQ(open_error(bytes), ErrorCode::package_corrupt) << c.what;
    EXPECT_NE(open_message(bytes).find(c.says), std::string::npos)
        << c.what << ": " << open_message(bytes);
  }
  // The limits themselves are fine.
  kiln_test::CudaTestPackage p = kiln_test::make_cuda_test_package();
  p.manifest.graphs[0]->specializations[0]->plan->launches[0]->block = {64, 16, 1};
  EXPECT_NO_THROW(PackageReader::open_memory(
      kiln_test::as_bytes(kiln_test::write_cuda_test_package(std::move(p)))));
}

TEST(PackageCorruption, SymbolValuesMustMatchSymbols) {
  Fixture f = make_fixture();
  f.manifest.graphs[0]->specializations[0]->symbol_values.clear();
  const auto bytes = write_package(std::move(f.manifest), std::move(f.blobs));
  EXPECT_EQ(open_error(bytes), ErrorCode::package_corrupt);
  EXPECT_NE(open_message(bytes).find("0 symbol values for 1 symbols"), std::string::npos)
      << open_message(bytes);
}

// GraphEntry.targets: ascending indices of package targets, naming every
// target of the graph's specializations. The fixture has targets 0
// (cpu:x86-64) and 1 (cpu:x86-64-v3); every specialization is for target 0.
fb::GraphEntryT& fixture_graph(Fixture& f, const std::string& name) {
  for (auto& g : f.manifest.graphs) {
    if (g->name == name) return *g;
  }
  throw std::logic_error("the fixture has no graph '" + name + "'");
}

// The writer stores an empty list as absent (FlatBuffers' object API), so a
// package with one is written with one entry, then that vector's length, found
// through the reader's API, is set to 0 and the checksum fixed.
std::vector<uint8_t> package_with_empty_targets(const std::string& graph) {
  Fixture f = make_fixture();
  fixture_graph(f, graph).targets = {0};
  std::vector<uint8_t> bytes = write_package(std::move(f.manifest), std::move(f.blobs));
  const fb::Manifest* m = fb::GetManifest(bytes.data() + header_of(bytes).manifest_offset);
  const auto* targets = m->graphs()->LookupByKey(graph.c_str())->targets();
  const auto at = static_cast<size_t>(reinterpret_cast<const uint8_t*>(targets) - bytes.data());
  flatbuffers::WriteScalar<flatbuffers::uoffset_t>(bytes.data() + at, 0);
  fix_checksum(bytes);
  return bytes;
}

TEST(PackageCorruption, GraphTargetsMustBeAscendingKnownAndCoverTheSpecializations) {
  struct Case {
    const char* what;
    std::vector<uint32_t> targets;
    std::vector<std::string> says;
  };
  const std::vector<Case> cases = {
      {"an index past the package's targets", {0, 2}, {"graph 'alpha' names target 2 of 2"}},
      {"the largest index", {0, 0xFFFFFFFFu}, {"graph 'alpha' names target 4294967295 of 2"}},
      {"a repeated index",
       {0, 0},
       {"graph 'alpha''s targets are not ascending and unique (0 then 0)"}},
      {"a descending list",
       {1, 0},
       {"graph 'alpha''s targets are not ascending and unique (1 then 0)"}},
      {"a specialization on a target the list lacks",
       {1},
       {"graph 'alpha' specialization 'n=8' is for target 0, which is not among the graph's "
        "targets (1)"}},
  };
  for (const Case& c : cases) {
    Fixture f = make_fixture();
    fixture_graph(f, "alpha").targets = c.targets;
    const auto bytes = write_package(std::move(f.manifest), std::move(f.blobs));
    EXPECT_EQ(open_error(bytes), ErrorCode::package_corrupt) << c.what;
    const std::string message = open_message(bytes);
    EXPECT_TRUE(message.starts_with("kiln: package manifest is inconsistent: ")) << message;
    for (const std::string& part : c.says) {
      EXPECT_NE(message.find(part), std::string::npos) << c.what << ": " << message;
    }
  }

  // An empty list is refused as such: the generator never writes one, and
  // kiln merge could not tell it from an absent list (every target).
  const std::vector<uint8_t> empty = package_with_empty_targets("alpha");
  ASSERT_NE(fb::GetManifest(empty.data() + header_of(empty).manifest_offset)
                ->graphs()
                ->LookupByKey("alpha")
                ->targets(),
            nullptr);
  EXPECT_EQ(open_error(empty), ErrorCode::package_corrupt);
  EXPECT_NE(open_message(empty).find("graph 'alpha''s targets are an empty list (expected absent, "
                                     "for every target, or at least one target index)"),
            std::string::npos)
      << open_message(empty);

  // Listing every target, or only those of its specializations, is fine.
  for (const std::vector<uint32_t>& valid : {std::vector<uint32_t>{0}, {0, 1}}) {
    Fixture f = make_fixture();
    fixture_graph(f, "alpha").targets = valid;
    const auto bytes = write_package(std::move(f.manifest), std::move(f.blobs));
    EXPECT_NO_THROW(PackageReader::open_memory(kiln_test::as_bytes(bytes)));
  }
}

// Calls a scale_add-shaped graph of `package` on `rows` rows of fixed inputs
// and returns the first element of y that is not 2 * x + w + shift, or -1.
int64_t first_wrong_element(kiln::Package& package, const std::string& graph, int64_t rows,
                            float shift) {
  std::vector<float> x(rows * kiln_test::kRowWidth), w(kiln_test::kRowWidth);
  std::vector<float> y(x.size(), -1.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5f * static_cast<float>(i % 13) - 2.0f;
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.25f * static_cast<float>(i);
  package.graph(graph).call(
      {kiln::TensorView(x.data(), kiln::DType::f32, {rows, kiln_test::kRowWidth}),
       kiln::TensorView(w.data(), kiln::DType::f32, {kiln_test::kRowWidth})},
      {kiln::TensorView(y.data(), kiln::DType::f32, {rows, kiln_test::kRowWidth})});
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] != 2.0f * x[i] + w[i % w.size()] + shift) return static_cast<int64_t>(i);
  }
  return -1;
}

// docs/runtime.md: a graph whose targets are narrowed runs the best of its
// own CPU targets, not the package's. Targets 0 (cpu:x86-64, the default
// kernels) and 1 (cpu:x86-64-v2, kernels that add kShiftedY): scale_add is
// kept to target 0, scale_add_temp has every target and code on target 1.
TEST(PackageReader, ARestrictedGraphRunsTheBestOfItsOwnCpuTargets) {
  if (!__builtin_cpu_supports("sse4.2") || !__builtin_cpu_supports("popcnt")) {
    GTEST_SKIP() << "this CPU does not run x86-64-v2 code";
  }
  kiln_test::TestGraphOptions temp;
  temp.name = "scale_add_temp";
  temp.use_temp = true;
  temp.target = 1;
  fb::ManifestT m = kiln_test::make_test_manifest({{}, temp}, {"cpu:x86-64", "cpu:x86-64-v2"});
  m.graphs[0]->targets = {0};
  std::vector<BlobInput> blobs = kiln_test::test_blobs(1);
  blobs.push_back({fb::BlobKind::CpuSharedObject, 1, kiln_test::shifted_scale_add_shared_object()});
  const std::vector<uint8_t> bytes = write_package(std::move(m), std::move(blobs));

  const PackageReader reader = PackageReader::open_memory(kiln_test::as_bytes(bytes));
  const auto* restricted = reader.manifest().graphs()->LookupByKey("scale_add")->targets();
  ASSERT_NE(restricted, nullptr);
  EXPECT_EQ(std::vector<uint32_t>(restricted->begin(), restricted->end()),
            std::vector<uint32_t>{0});
  EXPECT_EQ(reader.manifest().graphs()->LookupByKey("scale_add_temp")->targets(), nullptr);

  kiln::Package package = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
  EXPECT_EQ(first_wrong_element(package, "scale_add", 5, 0.0f), -1);
  EXPECT_EQ(first_wrong_element(package, "scale_add_temp", 5, kiln_test::kShiftedY), -1);
}

// A package that runs: scale_add and scale_add_temp over the real test
// kernels, plus an uncompressed 100-byte Source blob stored first, so that 28
// bytes of padding always follow it (blobs start 64-aligned).
std::vector<uint8_t> runnable_package() {
  kiln_test::TestGraphOptions temp;
  temp.name = "scale_add_temp";
  temp.use_temp = true;
  fb::ManifestT m = kiln_test::make_test_manifest({{}, temp});
  for (auto& kernel : m.kernels) kernel->blob = 1;
  m.kernels[0]->source_blob = 0;
  std::vector<BlobInput> blobs = {{fb::BlobKind::Source, 0, random_bytes(100, 3), false}};
  blobs.push_back(kiln_test::test_blobs().front());
  return write_package(std::move(m), std::move(blobs));
}

// What the reader makes of damaged bytes: the code of the PackageError it
// throws at open, "blob: <code>" when it opens but a blob's check throws, or
// "reads" when it opens and every blob passes. Anything else that escapes is
// named as such, for the caller to count as a failure.
std::string read_outcome(const std::vector<uint8_t>& bytes) {
  std::optional<PackageReader> reader;
  try {
    reader.emplace(PackageReader::open_memory(kiln_test::as_bytes(bytes)));
  } catch (const kiln::PackageError& e) {
    return std::string(kiln::error_code_name(e.code()));
  } catch (const std::exception& e) {
    return std::string("not a PackageError: ") + e.what();
  }
  try {
    reader->verify_all_blobs();
  } catch (const kiln::PackageError& e) {
    return "blob: " + std::string(kiln::error_code_name(e.code()));
  } catch (const std::exception& e) {
    return std::string("blob: not a PackageError: ") + e.what();
  }
  return "reads";
}

// The runtime on damaged bytes: the PackageError's code if it refuses them,
// else whether both graphs, at a static and a general size, still compute
// y = 2 * x + w ("runs right") or not.
std::string run_outcome(const std::vector<uint8_t>& bytes) {
  try {
    kiln::Package package = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
    for (const char* graph : {"scale_add", "scale_add_temp"}) {
      for (int64_t rows : {8, 5}) {
        if (first_wrong_element(package, graph, rows, 0.0f) >= 0) {
          return std::string("runs wrong: ") + graph;
        }
      }
    }
    return "runs right";
  } catch (const kiln::PackageError& e) {
    return std::string(kiln::error_code_name(e.code()));
  } catch (const kiln::Error& e) {
    return "not a PackageError: " + std::string(kiln::error_code_name(e.code())) + ": " + e.what();
  } catch (const std::exception& e) {
    return std::string("untyped exception: ") + e.what();
  }
}

// Outcomes per region of the file, with the first flip that gave each, so a
// failure says where to look and the counts can be reported.
class FlipTally {
 public:
  void add(const std::string& region, const std::string& outcome, size_t at, int bit) {
    Count& c = counts_[region][outcome];
    if (c.n++ == 0) c.first = "byte " + std::to_string(at) + " bit " + std::to_string(bit);
  }
  // Every outcome seen in `region` is one of `allowed`, and it had flips.
  void expect_only(const std::string& region, const std::set<std::string>& allowed) const {
    const auto it = counts_.find(region);
    ASSERT_NE(it, counts_.end()) << "no flip landed in " << region;
    for (const auto& [outcome, c] : it->second) {
      EXPECT_TRUE(allowed.contains(outcome))
          << region << ": " << c.n << " flips gave '" << outcome << "', first at " << c.first;
    }
  }
  void print() const {
    for (const auto& [region, outcomes] : counts_) {
      std::printf("  %-34s", region.c_str());
      for (const auto& [outcome, c] : outcomes) std::printf(" %s x%d;", outcome.c_str(), c.n);
      std::printf("\n");
    }
  }

 private:
  struct Count {
    int n = 0;
    std::string first;
  };
  std::map<std::string, std::map<std::string, Count>> counts_;
};

TEST(PackageCorruption, EveryHeaderBitFlipIsRefusedOrHarmless) {
  // Every bit of the 64-byte header, flipped alone: each field has the error
  // its check gives, and the two fields no check covers (format_minor and
  // flags, which a reader ignores by design) leave a package that runs right.
  const std::vector<uint8_t> bytes = runnable_package();
  ASSERT_EQ(run_outcome(bytes), "runs right");
  struct Field {
    const char* name;
    size_t offset, size;
    std::set<std::string> allowed;
  };
  const std::vector<Field> fields = {
      {"magic", offsetof(KilnPackageHeader, magic), 8, {"package_bad_magic"}},
      {"format_major",
       offsetof(KilnPackageHeader, format_major),
       2,
       {"package_unsupported_version"}},
      {"format_minor", offsetof(KilnPackageHeader, format_minor), 2, {"runs right"}},
      // The manifest starts at 192: a larger header_size puts it inside the
      // header or past the file; a smaller one moves where the checksum
      // starts.
      {"header_size",
       offsetof(KilnPackageHeader, header_size),
       4,
       {"package_corrupt", "package_checksum_mismatch"}},
      {"flags", offsetof(KilnPackageHeader, flags), 8, {"runs right"}},
      // Misaligned or outside the file, else the verifier finds no manifest
      // there.
      {"manifest_offset",
       offsetof(KilnPackageHeader, manifest_offset),
       8,
       {"package_corrupt", "package_verifier_failed"}},
      // A smaller size cuts the manifest short (verifier); a larger one runs
      // into the first blob (corrupt) unless it stays in the padding before
      // it, where the manifest reads the same.
      {"manifest_size",
       offsetof(KilnPackageHeader, manifest_size),
       8,
       {"package_corrupt", "package_verifier_failed", "runs right"}},
      {"file_size",
       offsetof(KilnPackageHeader, file_size),
       8,
       {"package_truncated", "package_corrupt"}},
      {"checksum", offsetof(KilnPackageHeader, checksum_lo), 16, {"package_checksum_mismatch"}},
  };
  FlipTally tally;
  size_t covered = 0;
  for (const Field& f : fields) {
    EXPECT_EQ(f.offset, covered) << f.name;
    covered = f.offset + f.size;
    for (size_t at = f.offset; at < f.offset + f.size; ++at) {
      for (int bit = 0; bit < 8; ++bit) {
        std::vector<uint8_t> copy = bytes;
        copy[at] ^= static_cast<uint8_t>(1u << bit);
        tally.add(f.name, run_outcome(copy), at, bit);
      }
    }
  }
  EXPECT_EQ(covered, sizeof(KilnPackageHeader));
  for (const Field& f : fields) tally.expect_only(f.name, f.allowed);
  tally.print();
}

TEST(PackageCorruption, RandomByteFlipsNeverCrash) {
  // Random single-bit flips past the header, by region. With the header's
  // checksum as written, the checksum refuses every one at open. With the
  // checksum recomputed over the damage, the checks behind it take over: a
  // blob's own hash catches a flip in its bytes, the verifier and the
  // manifest's consistency checks catch many in the manifest (a flip there
  // that still verifies can change what the package means, so it is only
  // read, never run), and a flip in the padding between blobs, which nothing
  // covers, leaves a package that runs right. Never a crash or an exception
  // that is not a PackageError.
  const std::vector<uint8_t> bytes = runnable_package();
  const PackageReader pristine = PackageReader::open_memory(kiln_test::as_bytes(bytes));
  const uint64_t manifest_begin = pristine.header().manifest_offset;
  const uint64_t manifest_end = manifest_begin + pristine.header().manifest_size;
  std::vector<std::pair<uint64_t, uint64_t>> blobs;  // [begin, end) of each blob's stored bytes
  for (const fb::Blob* blob : *pristine.manifest().blobs()) {
    blobs.emplace_back(blob->offset(), blob->offset() + blob->stored_size());
  }
  auto region_of = [&](size_t at) -> std::string {
    if (at >= manifest_begin && at < manifest_end) return "manifest";
    for (size_t b = 0; b < blobs.size(); ++b) {
      if (at >= blobs[b].first && at < blobs[b].second) return "blob " + std::to_string(b);
    }
    return "padding";
  };
  std::vector<size_t> padding;
  // Past the whole header: flips of its signature block are
  // test_package_signing's.
  const size_t header_end = pristine.header().header_size;
  for (size_t at = header_end; at < bytes.size(); ++at) {
    if (region_of(at) == "padding") padding.push_back(at);
  }
  ASSERT_GE(padding.size(), 28u);  // after the 100-byte Source blob, at least

  std::mt19937 rng(1234);
  auto flip = [&](std::vector<uint8_t>& copy, size_t at) {
    const int bit = static_cast<int>(rng() % 8);
    copy[at] ^= static_cast<uint8_t>(1u << bit);
    return bit;
  };
  FlipTally as_written, recomputed;
  for (int i = 0; i < 600; ++i) {
    const size_t at = header_end + rng() % (bytes.size() - header_end);
    std::vector<uint8_t> copy = bytes;
    const int bit = flip(copy, at);
    as_written.add(region_of(at), read_outcome(copy), at, bit);
  }
  // Padding is about one byte in 400: the random flips may miss it.
  for (const size_t at : padding) {
    std::vector<uint8_t> copy = bytes;
    const int bit = flip(copy, at);
    as_written.add("padding", read_outcome(copy), at, bit);
  }
  // The manifest and each blob get flips of their own, whatever their size.
  constexpr int kManifestFlips = 300, kFlipsPerBlob = 150;
  std::vector<size_t> targets;
  targets.reserve(kManifestFlips + kFlipsPerBlob * blobs.size());
  for (int i = 0; i < kManifestFlips; ++i) {
    targets.push_back(manifest_begin + rng() % (manifest_end - manifest_begin));
  }
  for (const auto& [begin, end] : blobs) {
    for (int i = 0; i < kFlipsPerBlob; ++i) targets.push_back(begin + rng() % (end - begin));
  }
  for (const size_t at : targets) {
    std::vector<uint8_t> copy = bytes;
    const int bit = flip(copy, at);
    fix_checksum(copy);
    recomputed.add(region_of(at), read_outcome(copy), at, bit);
  }
  for (const size_t at : padding) {
    std::vector<uint8_t> copy = bytes;
    const int bit = flip(copy, at);
    fix_checksum(copy);
    recomputed.add("padding", run_outcome(copy), at, bit);
  }

  for (const std::string region : {"manifest", "blob 0", "blob 1", "padding"}) {
    as_written.expect_only(region, {"package_checksum_mismatch"});
  }
  recomputed.expect_only(
      "manifest",
      {"package_checksum_mismatch", "package_verifier_failed", "package_unknown_target",
       "package_corrupt", "blob: package_corrupt", "blob: package_checksum_mismatch", "reads"});
  for (const std::string region : {"blob 0", "blob 1"}) {
    recomputed.expect_only(region, {"blob: package_checksum_mismatch"});
  }
  recomputed.expect_only("padding", {"runs right"});
  std::printf("checksum as written:\n");
  as_written.print();
  std::printf("checksum recomputed over the flip:\n");
  recomputed.print();
}

TEST(PackageReader, BorrowedBytesAreReadInPlace) {
  const std::vector<uint8_t> bytes = fixture_package();
  PackageReader reader = PackageReader::open_borrowed(kiln_test::as_bytes(bytes));
  EXPECT_EQ(static_cast<const void*>(reader.file_bytes().data()),
            static_cast<const void*>(bytes.data()));
  // Misaligned memory is copied, not read in place.
  std::vector<uint8_t> shifted(bytes.size() + 1);
  std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
  PackageReader copy = PackageReader::open_borrowed(std::as_bytes(std::span(shifted).subspan(1)));
  EXPECT_NE(static_cast<const void*>(copy.file_bytes().data()),
            static_cast<const void*>(shifted.data() + 1));
  EXPECT_EQ(copy.manifest().graphs()->size(), 2u);
}

}  // namespace
