// A package's bytes as tests damage them, edited in place as damage would
// edit them: its header, the checksum recomputed after a change (as an
// attacker or a careless tool would), so that only the checks behind it can
// catch the edit, and a manifest rewritten or replaced.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/abi/package_header.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace kiln_test {

inline KilnPackageHeader header_of(const std::vector<uint8_t>& bytes) {
  KilnPackageHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  return h;
}

// Rewrites the header's checksum over [header_size, end).
inline void fix_checksum(std::vector<uint8_t>& bytes) {
  KilnPackageHeader h = header_of(bytes);
  const XXH128_hash_t sum =
      XXH3_128bits(bytes.data() + h.header_size, bytes.size() - h.header_size);
  h.checksum_lo = sum.low64;
  h.checksum_hi = sum.high64;
  std::memcpy(bytes.data(), &h, sizeof h);
}

// Re-encodes the manifest after `mutate` (same size, thanks to
// ForceDefaults) and fixes the checksum, so only the semantic checks can
// catch what `mutate` broke.
inline void rewrite_manifest(std::vector<uint8_t>& bytes,
                             const std::function<void(kiln::fb::ManifestT&)>& mutate) {
  KilnPackageHeader h = header_of(bytes);
  kiln::fb::ManifestT m;
  kiln::fb::GetManifest(bytes.data() + h.manifest_offset)->UnPackTo(&m);
  mutate(m);
  flatbuffers::FlatBufferBuilder builder;
  builder.ForceDefaults(true);
  kiln::fb::FinishManifestBuffer(builder, kiln::fb::Manifest::Pack(builder, &m));
  ASSERT_EQ(builder.GetSize(), h.manifest_size);
  std::memcpy(bytes.data() + h.manifest_offset, builder.GetBufferPointer(), builder.GetSize());
  fix_checksum(bytes);
}

// Puts `manifest` in place of the package's manifest, leaving every blob
// where it is (so `manifest` must fit before the first blob and keep their
// offsets), and recomputes the checksum: a package as a writer other than
// write_package() would make it.
inline void replace_manifest(std::vector<uint8_t>& bytes, const kiln::fb::ManifestT& manifest) {
  flatbuffers::FlatBufferBuilder builder;
  builder.ForceDefaults(true);
  kiln::fb::FinishManifestBuffer(builder, kiln::fb::Manifest::Pack(builder, &manifest));
  KilnPackageHeader h = header_of(bytes);
  uint64_t end = bytes.size();
  for (const auto& blob : manifest.blobs) end = std::min(end, blob->offset);
  if (h.manifest_offset + builder.GetSize() > end) {
    throw std::invalid_argument("replace_manifest: the manifest does not fit before the blobs");
  }
  std::fill(bytes.begin() + static_cast<ptrdiff_t>(h.manifest_offset),
            bytes.begin() + static_cast<ptrdiff_t>(end), uint8_t{0});
  std::memcpy(bytes.data() + h.manifest_offset, builder.GetBufferPointer(), builder.GetSize());
  h.manifest_size = builder.GetSize();
  std::memcpy(bytes.data(), &h, sizeof h);
  fix_checksum(bytes);
}

}  // namespace kiln_test
