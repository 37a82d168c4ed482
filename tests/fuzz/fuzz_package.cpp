// libFuzzer target for everything that reads a package: the header checks,
// the FlatBuffers verifier, the semantic validation, guard compilation and
// blob decompression. Any input must either open or raise kiln::Error.
//
// The first input byte picks the mode:
//   even: the input is a whole file (exercises the header and checksum);
//   odd:  the rest is a manifest, wrapped here in a valid header with a
//         correct checksum, so the fuzzer reaches the layers behind it.
#include <cstdint>
#include <cstring>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "kiln/abi/package_header.h"
#include "kiln/runtime.h"

namespace {

std::vector<std::byte> wrap_manifest(const uint8_t* data, size_t size) {
  // The manifest sits right after the header; pad to 8 for FlatBuffers.
  const size_t manifest_offset = KILN_PACKAGE_HEADER_SIZE;
  std::vector<std::byte> file(manifest_offset + size);
  std::memcpy(file.data() + manifest_offset, data, size);
  KilnPackageHeader h{};
  std::memcpy(h.magic, KILN_PACKAGE_MAGIC, 8);
  h.format_major = KILN_PACKAGE_FORMAT_MAJOR;
  h.format_minor = KILN_PACKAGE_FORMAT_MINOR;
  h.header_size = KILN_PACKAGE_HEADER_SIZE;
  h.manifest_offset = manifest_offset;
  h.manifest_size = size;
  h.file_size = file.size();
  const XXH128_hash_t sum = XXH3_128bits(file.data() + manifest_offset, size);
  h.checksum_lo = sum.low64;
  h.checksum_hi = sum.high64;
  std::memcpy(file.data(), &h, sizeof h);
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<std::byte> file;
  if (data[0] % 2 == 0) {
    file.resize(size - 1);
    if (size > 1) std::memcpy(file.data(), data + 1, size - 1);
  } else {
    file = wrap_manifest(data + 1, size - 1);
  }
  try {
    kiln::Package pkg = kiln::Package::open_memory(file);
    pkg.reader().verify_all_blobs();
    for (std::string_view name : pkg.graph_names()) (void)pkg.graph(name).num_inputs();
  } catch (const kiln::Error&) {
    // A typed error is the expected outcome for almost every input.
  }
  return 0;
}
