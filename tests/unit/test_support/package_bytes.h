// A package's bytes as tests damage them: its header, and the checksum
// recomputed after a change, as an attacker (or a careless tool) would.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

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

}  // namespace kiln_test
