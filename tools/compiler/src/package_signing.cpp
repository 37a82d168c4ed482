#include "kiln/compiler/package_signing.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "kiln/abi/package_header.h"
#include "kiln/package_signature.h"

namespace kiln::compiler {

void sign_package(std::span<uint8_t> package, const support::Ed25519SecretKey& secret_key) {
  if (package.size() < KILN_PACKAGE_HEADER_SIZE ||
      std::memcmp(package.data(), KILN_PACKAGE_MAGIC, sizeof(KilnPackageHeader::magic)) != 0) {
    throw std::invalid_argument("kiln: sign: not a Kiln package (no \"KILNPKG\" header)");
  }
  KilnPackageHeader header;
  std::memcpy(&header, package.data(), sizeof header);
  if (header.header_size < KILN_PACKAGE_SIGNED_HEADER_SIZE) {
    throw std::invalid_argument(
        "kiln: sign: the package is format " + std::to_string(header.format_major) + "." +
        std::to_string(header.format_minor) + ", whose " + std::to_string(header.header_size) +
        "-byte header has no signature block (format 1.2 and later have one): rebuild it with "
        "this Kiln to sign it");
  }
  if (header.file_size != package.size() || header.header_size > package.size() ||
      header.manifest_offset < header.header_size || header.manifest_offset > package.size() ||
      header.manifest_size > package.size() - header.manifest_offset) {
    throw std::invalid_argument("kiln: sign: the package's header does not describe its " +
                                std::to_string(package.size()) +
                                " bytes (file size or manifest range)");
  }
  KilnPackageSignature block{};
  block.algorithm = KILN_PACKAGE_SIGNED_ED25519;
  const support::Ed25519PublicKey public_key = support::ed25519_public_key_of(secret_key);
  std::memcpy(block.public_key, public_key.data(), public_key.size());
  // The message is built with the block in place (its signature field zeroed
  // by package_signed_message), so algorithm and key are signed too.
  std::memcpy(package.data() + KILN_PACKAGE_SIGNATURE_OFFSET, &block, sizeof block);
  const std::span<const std::byte> file = std::as_bytes(package);
  const support::Ed25519Signature signature =
      support::ed25519_sign(message_view(package_signed_message(file, header)), secret_key);
  std::memcpy(block.signature, signature.data(), signature.size());
  std::memcpy(package.data() + KILN_PACKAGE_SIGNATURE_OFFSET, &block, sizeof block);
}

}  // namespace kiln::compiler
