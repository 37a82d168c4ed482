// Signing a package: the writer's half of format 1.2's signature block
// (docs/package-format.md, "Signature"). The runtime's reader verifies it.
#pragma once

#include <cstdint>
#include <span>

#include "kiln/support/crypto.h"

namespace kiln::compiler {

// Fills the signature block of `package` (a package write_package() wrote,
// or one the runtime's reader verified) in place with `secret_key`'s ed25519
// signature of its header and manifest, replacing any earlier signature.
// Nothing else changes: the checksum does not cover the header, and no
// offset moves. Deterministic (ed25519 is): the same package and key give
// the same bytes. Throws std::invalid_argument when the bytes have no
// signature block (format 1.1 and before: rebuild the package) or their
// header does not describe them, and support::CryptoError.
void sign_package(std::span<uint8_t> package, const support::Ed25519SecretKey& secret_key);

}  // namespace kiln::compiler
