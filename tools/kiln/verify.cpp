// `kiln verify PKG`: every check the runtime makes at open, plus every
// blob's hash and decompression, which the runtime defers to first use;
// and who signed it, against the trusted keys when there are some.
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
