// The reader's half of signed packages: the signature block of a package
// whose header and manifest range are already checked.
#pragma once

#include <cstddef>
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

}  // namespace kiln::detail
