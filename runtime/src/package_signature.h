// The reader's half of signed packages: the signature block of a package
// whose header and manifest range are already checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "kiln/abi/package_header.h"
#include "kiln/package_reader.h"

namespace kiln::detail {

// The signer of `file`, nullopt when it is unsigned (a 1.1 header without a
// block, or a block of KILN_PACKAGE_UNSIGNED). Throws PackageError
// (package_corrupt) for a block that is neither unsigned (all zero) nor an
// ed25519 signature, and UntrustedPackageError(bad_signature) for a
// signature that does not verify.
std::optional<PackageSigner> verify_package_signature(std::span<const std::byte> file,
                                                      const KilnPackageHeader& header);

// A signature binds each blob through its BLAKE2b-256 digest in the signed
// manifest: `signer`'s package must give every blob one. Throws
// PackageError(package_corrupt) naming the first blob without.
void require_blob_digests(const fb::Manifest& manifest, const PackageSigner& signer);

// Checks blob `index`'s stored bytes against its digest, when it has one
// (validate_manifest() checked its size; a signed package has one for every
// blob: require_blob_digests()). A mismatch is UntrustedPackageError
// (bad_signature) in a signed package: the bytes are not those signed; in an
// unsigned one PackageError(package_checksum_mismatch). Both name the blob.
void check_blob_digest(const fb::Blob& blob, uint32_t index, std::span<const std::byte> stored,
                       const std::optional<PackageSigner>& signer);

}  // namespace kiln::detail
