// What a package's signature signs (format 1.2, kiln/abi/package_header.h):
// the one definition that `kiln sign` (kiln/compiler/package_signing.h) and
// the runtime's reader both build the message from.
#pragma once

#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "kiln/abi/package_header.h"
#include "kiln/support/crypto.h"

namespace kiln {

// The signature block of `file`, whose header_size is at least
// KILN_PACKAGE_SIGNED_HEADER_SIZE (the caller checked it, and the size).
inline KilnPackageSignature package_signature_block(std::span<const std::byte> file) {
  KilnPackageSignature block;
  std::memcpy(&block, file.data() + KILN_PACKAGE_SIGNATURE_OFFSET, sizeof block);
  return block;
}

// The signed message: the BLAKE2b-512 hash of the header's bytes
// [0, header_size) with the block's `signature` zeroed (so the signature
// cannot sign itself, while the algorithm and public key are signed),
// followed by the manifest's bytes. The header holds the sizes and the
// checksum of everything after it, the manifest every blob's hash: changing
// any of them breaks the signature. Signing the hash rather than the bytes
// keeps the check fast: ed25519 would hash the manifest (763 KB for the
// 10,000-op sin chain, most of it the IR) with SHA-512, about twice
// BLAKE2b's time. `file` must hold the header and the manifest range
// `header` gives (the caller checked both). Throws support::CryptoError.
inline support::Hash512 package_signed_message(std::span<const std::byte> file,
                                               const KilnPackageHeader& header) {
  std::string head(reinterpret_cast<const char*>(file.data()), header.header_size);
  std::memset(
      head.data() + KILN_PACKAGE_SIGNATURE_OFFSET + offsetof(KilnPackageSignature, signature), 0,
      sizeof(KilnPackageSignature::signature));
  const std::string_view parts[] = {
      head, std::string_view(reinterpret_cast<const char*>(file.data() + header.manifest_offset),
                             header.manifest_size)};
  return support::hash512(parts);
}

// The hash as the string_view ed25519_sign and ed25519_verify take.
inline std::string_view message_view(const support::Hash512& hash) {
  return {reinterpret_cast<const char*>(hash.data()), hash.size()};
}

}  // namespace kiln
