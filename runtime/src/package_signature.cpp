#include "package_signature.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

#include "kiln/error.h"
#include "kiln/package_signature.h"
#include "kiln/support/crypto.h"
#include "kiln/support/key_file.h"
#include "text.h"

namespace kiln::detail {

std::optional<PackageSigner> verify_package_signature(std::span<const std::byte> file,
                                                      const KilnPackageHeader& header) {
  // A header without a block (format 1.1 and before) is unsigned.
  if (header.header_size < KILN_PACKAGE_SIGNED_HEADER_SIZE) return std::nullopt;
  const KilnPackageSignature block = package_signature_block(file);
  if (block.algorithm == KILN_PACKAGE_UNSIGNED) {
    const auto* first = file.data() + KILN_PACKAGE_SIGNATURE_OFFSET;
    if (std::any_of(first, first + KILN_PACKAGE_SIGNATURE_SIZE,
                    [](std::byte b) { return b != std::byte{0}; })) {
      throw PackageError(ErrorCode::package_corrupt,
                         "kiln: package signature block says unsigned (algorithm 0) but is not "
                         "all zero: the header is damaged");
    }
    return std::nullopt;
  }
  if (block.algorithm != KILN_PACKAGE_SIGNED_ED25519 || block.reserved != 0) {
    throw PackageError(ErrorCode::package_corrupt,
                       cat("kiln: package signature block: expected algorithm ",
                           KILN_PACKAGE_UNSIGNED, " (unsigned) or ", KILN_PACKAGE_SIGNED_ED25519,
                           " (ed25519) and a zero reserved field, got algorithm ", block.algorithm,
                           ", reserved ", block.reserved));
  }
  PackageSigner signer;
  std::memcpy(signer.public_key.data(), block.public_key, signer.public_key.size());
  signer.key_id = support::key_id(signer.public_key);
  support::Ed25519Signature signature;
  std::memcpy(signature.data(), block.signature, signature.size());
  bool valid = false;
  try {
    valid = support::ed25519_verify(message_view(package_signed_message(file, header)), signature,
                                    signer.public_key);
  } catch (const support::CryptoError& e) {
    throw Error(ErrorCode::internal, e.what());
  }
  if (!valid) {
    throw UntrustedPackageError(
        UntrustedPackageError::Reason::bad_signature, signer.key_id,
        cat("kiln: package signature by key ", signer.key_id,
            " does not verify: the package was changed after it was signed"));
  }
  return signer;
}

void require_blob_digests(const fb::Manifest& manifest, const PackageSigner& signer) {
  const auto* blobs = manifest.blobs();
  for (uint32_t b = 0; blobs != nullptr && b < blobs->size(); ++b) {
    if (blobs->Get(b)->digest() == nullptr) {
      throw PackageError(ErrorCode::package_corrupt,
                         cat("kiln: package is signed by key ", signer.key_id, " but blob ", b,
                             " has no digest, so the signature does not bind its bytes: a "
                             "signed package gives every blob's BLAKE2b-256 digest (rebuild it "
                             "with this Kiln and sign it again)"));
    }
  }
}

void check_blob_digest(const fb::Blob& blob, uint32_t index, std::span<const std::byte> stored,
                       const std::optional<PackageSigner>& signer) {
  const flatbuffers::Vector<uint8_t>* expected = blob.digest();
  if (expected == nullptr) return;
  const std::string_view parts[] = {{reinterpret_cast<const char*>(stored.data()), stored.size()}};
  support::Hash256 digest;
  try {
    digest = support::hash256(parts);
  } catch (const support::CryptoError& e) {
    throw Error(ErrorCode::internal, e.what());
  }
  if (expected->size() == digest.size() &&
      std::equal(digest.begin(), digest.end(), expected->begin())) {
    return;
  }
  const std::string what = cat("kiln: blob ", index, " (", stored.size(), " bytes at offset ",
                               blob.offset(), ") does not match its BLAKE2b-256 digest");
  if (signer) {
    throw UntrustedPackageError(UntrustedPackageError::Reason::bad_signature, signer->key_id,
                                cat(what, " in the manifest signed by key ", signer->key_id,
                                    ": the blob was changed after the package was signed"));
  }
  throw PackageError(ErrorCode::package_checksum_mismatch, what + ": the package is damaged");
}

}  // namespace kiln::detail
