// Test helper: a package's bytes edited in place, as damage would edit them,
// with the header's checksum made right again so that only the checks behind
// it can catch the edit.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
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

}  // namespace kiln_test
