#include "kiln/compiler/package_writer.h"

#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "kiln/abi/package_header.h"
#include "kiln/support/crypto.h"
#include "kiln/support/file_io.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace kiln::compiler {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the .kiln header is little-endian and written in place");

// Level 19 takes seconds on a multi-megabyte shared object; 9 is within a
// few percent of its ratio at a fraction of the time.
constexpr int kZstdLevel = 9;

uint64_t align_up(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

struct StoredBlob {
  std::vector<uint8_t> bytes;
  uint64_t raw_size = 0;
  kiln::fb::Compression compression = kiln::fb::Compression::None;
};

StoredBlob store(BlobInput& input) {
  StoredBlob out;
  out.raw_size = input.bytes.size();
  if (input.compress && !input.bytes.empty()) {
    std::vector<uint8_t> packed(ZSTD_compressBound(input.bytes.size()));
    // ZSTD_compress writes the content size into the frame, which the
    // reader checks against raw_size before allocating.
    size_t n = ZSTD_compress(packed.data(), packed.size(), input.bytes.data(), input.bytes.size(),
                             kZstdLevel);
    if (ZSTD_isError(n)) {
      throw std::runtime_error(std::string("kiln: zstd compression failed: ") +
                               ZSTD_getErrorName(n));
    }
    if (n < input.bytes.size()) {
      packed.resize(n);
      out.bytes = std::move(packed);
      out.compression = kiln::fb::Compression::Zstd;
      return out;
    }
  }
  out.bytes = std::move(input.bytes);
  return out;
}

std::vector<uint8_t> build_manifest(const kiln::fb::ManifestT& manifest) {
  flatbuffers::FlatBufferBuilder builder(16 * 1024);
  // Every scalar is written even when it equals its default, so the size of
  // the manifest does not depend on the offsets filled in afterwards.
  builder.ForceDefaults(true);
  kiln::fb::FinishManifestBuffer(builder, kiln::fb::Manifest::Pack(builder, &manifest));
  return {builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize()};
}

void check_manifest(const kiln::fb::ManifestT& manifest) {
  for (size_t i = 1; i < manifest.graphs.size(); ++i) {
    if (manifest.graphs[i - 1]->name == manifest.graphs[i]->name) {
      throw std::invalid_argument("kiln: two graphs are named '" + manifest.graphs[i]->name + "'");
    }
  }
  for (const auto& graph : manifest.graphs) {
    if (!graph) throw std::invalid_argument("kiln: a null graph in the manifest");
  }
}

}  // namespace

std::vector<uint8_t> write_package(kiln::fb::ManifestT manifest, std::vector<BlobInput> blobs) {
  if (!manifest.blobs.empty()) {
    throw std::invalid_argument("kiln: write_package: the manifest already lists " +
                                std::to_string(manifest.blobs.size()) +
                                " blobs whose bytes are not given; pass every blob as a BlobInput");
  }
  for (const auto& graph : manifest.graphs) {
    if (!graph) throw std::invalid_argument("kiln: write_package: a null graph in the manifest");
  }
  std::stable_sort(manifest.graphs.begin(), manifest.graphs.end(),
                   [](const auto& a, const auto& b) { return a->name < b->name; });
  check_manifest(manifest);

  std::vector<StoredBlob> stored;
  stored.reserve(blobs.size());
  for (BlobInput& input : blobs) {
    if (input.target >= manifest.targets.size()) {
      throw std::invalid_argument("kiln: write_package: a blob names target " +
                                  std::to_string(input.target) + " of " +
                                  std::to_string(manifest.targets.size()));
    }
    StoredBlob s = store(input);
    XXH128_hash_t hash = XXH3_128bits(s.bytes.data(), s.bytes.size());
    auto entry = std::make_unique<kiln::fb::BlobT>();
    entry->kind = input.kind;
    entry->target = input.target;
    entry->stored_size = s.bytes.size();
    entry->raw_size = s.raw_size;
    entry->compression = s.compression;
    entry->hash = std::make_unique<kiln::fb::Hash128>(hash.low64, hash.high64);
    const std::string_view stored_bytes[] = {
        {reinterpret_cast<const char*>(s.bytes.data()), s.bytes.size()}};
    const support::Hash256 digest = support::hash256(stored_bytes);
    entry->digest.assign(digest.begin(), digest.end());
    manifest.blobs.push_back(std::move(entry));
    stored.push_back(std::move(s));
  }

  // Offsets depend on the manifest's size and the size must not depend on
  // the offsets; ForceDefaults makes that hold, and the loop proves it.
  // The header and its signature block (zero: unsigned until kiln sign
  // fills it in place, which moves nothing).
  const uint64_t manifest_offset = KILN_PACKAGE_SIGNED_HEADER_SIZE;
  std::vector<uint8_t> manifest_bytes = build_manifest(manifest);
  for (int attempt = 0;; ++attempt) {
    uint64_t cursor =
        align_up(manifest_offset + manifest_bytes.size(), KILN_PACKAGE_BLOB_ALIGNMENT);
    for (size_t i = 0; i < stored.size(); ++i) {
      manifest.blobs[i]->offset = cursor;
      cursor = align_up(cursor + stored[i].bytes.size(), KILN_PACKAGE_BLOB_ALIGNMENT);
    }
    std::vector<uint8_t> rebuilt = build_manifest(manifest);
    if (rebuilt.size() == manifest_bytes.size()) {
      manifest_bytes = std::move(rebuilt);
      break;
    }
    if (attempt == 4) throw std::logic_error("kiln: the manifest size does not settle");
    manifest_bytes = std::move(rebuilt);
  }

  uint64_t file_size = manifest_offset + manifest_bytes.size();
  if (!stored.empty()) file_size = manifest.blobs.back()->offset + stored.back().bytes.size();
  std::vector<uint8_t> file(file_size, 0);
  std::memcpy(file.data() + manifest_offset, manifest_bytes.data(), manifest_bytes.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    if (!stored[i].bytes.empty()) {
      std::memcpy(file.data() + manifest.blobs[i]->offset, stored[i].bytes.data(),
                  stored[i].bytes.size());
    }
  }

  KilnPackageHeader header{};
  std::memcpy(header.magic, KILN_PACKAGE_MAGIC, sizeof(header.magic));  // with its NUL
  header.format_major = KILN_PACKAGE_FORMAT_MAJOR;
  header.format_minor = KILN_PACKAGE_FORMAT_MINOR;
  header.header_size = KILN_PACKAGE_SIGNED_HEADER_SIZE;
  header.flags = 0;
  header.manifest_offset = manifest_offset;
  header.manifest_size = manifest_bytes.size();
  header.file_size = file_size;
  XXH128_hash_t checksum =
      XXH3_128bits(file.data() + header.header_size, file_size - header.header_size);
  header.checksum_lo = checksum.low64;
  header.checksum_hi = checksum.high64;
  std::memcpy(file.data(), &header, sizeof(header));
  return file;
}

void write_package_file(const std::filesystem::path& path, kiln::fb::ManifestT manifest,
                        std::vector<BlobInput> blobs) {
  const std::vector<uint8_t> bytes = write_package(std::move(manifest), std::move(blobs));
  support::write_file_atomic(
      path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace kiln::compiler
