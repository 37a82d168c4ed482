// Writes .kiln files: the fixed header, the FlatBuffers manifest, then each
// blob 64-byte aligned. The runtime's PackageReader is the other half.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "kiln/abi/kiln_package_generated.h"

namespace kiln::compiler {

struct BlobInput {
  kiln::fb::BlobKind kind = kiln::fb::BlobKind::CpuSharedObject;
  uint32_t target = 0;  // index into ManifestT::targets
  std::vector<uint8_t> bytes;
  bool compress = true;  // zstd, kept only when it shrinks the blob
};

// Appends each blob to manifest.blobs in order (blob i of `blobs` becomes
// manifest blob manifest.blobs.size() + i; entries already there must not
// exist, since their bytes are not given), sorts graphs by name, fills
// offsets, sizes, hashes (XXH3-128 and the BLAKE2b-256 digest of each blob's
// stored bytes) and the header checksum, and returns the file.
// Deterministic: the same inputs give the same bytes.
// Throws std::invalid_argument for inputs no reader would accept.
std::vector<uint8_t> write_package(kiln::fb::ManifestT manifest, std::vector<BlobInput> blobs);

// write_package() to `path`, atomically: a temp file in the same directory,
// then rename. Throws std::runtime_error on I/O failure.
void write_package_file(const std::filesystem::path& path, kiln::fb::ManifestT manifest,
                        std::vector<BlobInput> blobs);

}  // namespace kiln::compiler
