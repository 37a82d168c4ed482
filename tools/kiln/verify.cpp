// `kiln verify PKG`: every check the runtime makes at open, plus every
// blob's hash and decompression, which the runtime defers to first use.
#include <cstdio>
#include <exception>

#include "commands.h"
#include "kiln/package_reader.h"

namespace kiln::cli {

int run_verify(const std::filesystem::path& package) {
  try {
    PackageReader reader = PackageReader::open_file(package);
    reader.verify_all_blobs();
    const fb::Manifest& m = reader.manifest();
    std::printf("ok: %s (%u graphs, %u blobs, %zu bytes)\n", package.c_str(),
                m.graphs() ? m.graphs()->size() : 0u, m.blobs() ? m.blobs()->size() : 0u,
                reader.file_bytes().size());
    return 0;
  } catch (const std::exception& e) {
    return report_failure(e);
  }
}

}  // namespace kiln::cli
