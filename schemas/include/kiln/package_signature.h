// What a package's signature signs (format 1.2, kiln/abi/package_header.h):
// the one definition that `kiln sign` (kiln/compiler/package_signing.h) and
// the runtime's reader both build the message from.
#pragma once

#include <cstddef>
#include <cstring>
#include <span>
#include <string>

#include "kiln/abi/package_header.h"

namespace kiln {

// The signature block of `file`, whose header_size is at least
// KILN_PACKAGE_SIGNED_HEADER_SIZE (the caller checked it, and the size).
inline KilnPackageSignature package_signature_block(std::span<const std::byte> file) {
  KilnPackageSignature block;
  std::memcpy(&block, file.data() + KILN_PACKAGE_SIGNATURE_OFFSET, sizeof block);
  return block;
}

// The signed message: the header's bytes [0, header_size) with the block's
// `signature` zeroed (so the signature cannot sign itself, while the
// algorithm and public key are signed), then the manifest's bytes. The
// header holds the sizes and the checksum of everything after it, the
// manifest every blob's hash: changing any of them breaks the signature.
// `file` must hold the header and the manifest range `header` gives (the
// caller checked both).
inline std::string package_signed_message(std::span<const std::byte> file,
                                          const KilnPackageHeader& header) {
  std::string message(header.header_size + header.manifest_size, '\0');
  std::memcpy(message.data(), file.data(), header.header_size);
  std::memset(
      message.data() + KILN_PACKAGE_SIGNATURE_OFFSET + offsetof(KilnPackageSignature, signature), 0,
      sizeof(KilnPackageSignature::signature));
  std::memcpy(message.data() + header.header_size, file.data() + header.manifest_offset,
              header.manifest_size);
  return message;
}

}  // namespace kiln
