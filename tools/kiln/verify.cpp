// `kiln verify PKG`: every check the runtime makes at open, plus every
// blob's hash, digest and decompression, which the runtime defers to first use;
// and who signed it, against the trusted keys when there are some.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "commands.h"
#include "kiln/package_reader.h"
#include "kiln/support/env.h"

namespace kiln::cli {

int run_verify(const std::filesystem::path& package, std::optional<std::string_view> trusted_keys) {
  try {
    std::string origin = "--trusted-keys";
    if (!trusted_keys) {
      trusted_keys = support::env_value("KILN_TRUSTED_KEYS");
      origin = "KILN_TRUSTED_KEYS";
    }
    const std::vector<TrustedKey> trusted =
        trusted_keys ? trusted_key_files_of(*trusted_keys, origin) : std::vector<TrustedKey>{};
    PackageReader reader = PackageReader::open_file(package);
    const TrustedKey* signed_by = check_package_trust(reader, trusted);
    reader.verify_all_blobs();
    const fb::Manifest& m = reader.manifest();
    std::printf("ok: %s (%u graphs, %u blobs, %zu bytes)\n", package.c_str(),
                m.graphs() ? m.graphs()->size() : 0u, m.blobs() ? m.blobs()->size() : 0u,
                reader.file_bytes().size());
    const uint32_t blob_count = m.blobs() ? m.blobs()->size() : 0u;
    uint32_t without_digest = 0;
    for (uint32_t b = 0; b < blob_count; ++b)
      without_digest += m.blobs()->Get(b)->digest() == nullptr;
    if (without_digest == 0) {
      std::printf("digests: every blob matches its BLAKE2b-256 digest\n");
    } else {
      std::printf(
          "digests: %u of %u blobs have none (an older writer); their XXH3-128 hashes match\n",
          without_digest, blob_count);
    }
    if (!reader.signer()) {
      std::printf("unsigned\n");
    } else if (signed_by == nullptr) {
      std::printf(
          "signed by key %s (signature valid; not checked against trusted keys: none "
          "given)\n",
          reader.signer()->key_id.c_str());
    } else {
      std::printf("signed by key %s%s%s%s, trusted (%s)\n", signed_by->key_id.c_str(),
                  signed_by->comment.empty() ? "" : " (", signed_by->comment.c_str(),
                  signed_by->comment.empty() ? "" : ")", signed_by->source.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    return report_failure(e);
  }
}

}  // namespace kiln::cli
