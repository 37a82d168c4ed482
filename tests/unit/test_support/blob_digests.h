// Whether a package's blobs carry the digests a signature binds them with
// (docs/package-format.md, "Signature"): what every writer must give.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kiln/package_reader.h"
#include "kiln/support/crypto.h"

namespace kiln_test {

// "" when every blob of `reader`'s package has a digest equal to the
// BLAKE2b-256 of its stored bytes (and the reader's own check accepts it),
// else what is wrong with the first blob that fails.
inline std::string blob_digest_problems(const kiln::PackageReader& reader) {
  const auto* blobs = reader.manifest().blobs();
  for (uint32_t b = 0; blobs != nullptr && b < blobs->size(); ++b) {
    const auto* digest = blobs->Get(b)->digest();
    if (digest == nullptr) return "blob " + std::to_string(b) + " has no digest";
    const std::span<const std::byte> stored = reader.stored_blob(b);
    const std::string_view parts[] = {
        {reinterpret_cast<const char*>(stored.data()), stored.size()}};
    const kiln::support::Hash256 expected = kiln::support::hash256(parts);
    if (std::string_view(reinterpret_cast<const char*>(digest->data()), digest->size()) !=
        std::string_view(reinterpret_cast<const char*>(expected.data()), expected.size())) {
      return "blob " + std::to_string(b) + "'s digest is not BLAKE2b-256 of its stored bytes";
    }
  }
  try {
    reader.verify_all_blobs();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace kiln_test
