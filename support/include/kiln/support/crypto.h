// Keys, signatures and MACs through libsodium (Debian libsodium-dev, linked
// statically): ed25519 for packages (who built this code) and a keyed MAC for
// cache entries (this user's process wrote this entry). The one place Kiln
// calls libsodium, so every module signs, verifies and authenticates the
// same way.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string_view>

namespace kiln::support {

// libsodium could not start (sodium_init failed: no entropy source).
class CryptoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr size_t kEd25519PublicKeyBytes = 32;
// libsodium's layout: the 32-byte seed, then the public key.
inline constexpr size_t kEd25519SecretKeyBytes = 64;
inline constexpr size_t kEd25519SignatureBytes = 64;
inline constexpr size_t kMacKeyBytes = 32;
inline constexpr size_t kMacBytes = 32;

using Ed25519PublicKey = std::array<uint8_t, kEd25519PublicKeyBytes>;
using Ed25519SecretKey = std::array<uint8_t, kEd25519SecretKeyBytes>;
using Ed25519Signature = std::array<uint8_t, kEd25519SignatureBytes>;
using MacKey = std::array<uint8_t, kMacKeyBytes>;
using Mac = std::array<uint8_t, kMacBytes>;

struct Ed25519KeyPair {
  Ed25519PublicKey public_key;
  Ed25519SecretKey secret_key;
};

// A fresh key pair from the system's entropy. Throws CryptoError.
Ed25519KeyPair ed25519_generate_key_pair();

// The public half kept inside a secret key.
Ed25519PublicKey ed25519_public_key_of(const Ed25519SecretKey& secret_key) noexcept;

// A detached signature of `message`. Throws CryptoError.
Ed25519Signature ed25519_sign(std::string_view message, const Ed25519SecretKey& secret_key);

// Whether `signature` is `public_key`'s signature of `message`. A malformed
// key or signature is simply not valid. Throws CryptoError.
bool ed25519_verify(std::string_view message, const Ed25519Signature& signature,
                    const Ed25519PublicKey& public_key);

inline constexpr size_t kHash512Bytes = 64;
using Hash512 = std::array<uint8_t, kHash512Bytes>;

// BLAKE2b-512 (libsodium's crypto_generichash) of the concatenation of
// `parts`, hashed in place: a large message is signed as its hash (ed25519
// hashes what it signs with SHA-512, about twice as slow on x86-64 without
// SHA extensions). Throws CryptoError.
Hash512 hash512(std::span<const std::string_view> parts);

inline constexpr size_t kHash256Bytes = 32;
using Hash256 = std::array<uint8_t, kHash256Bytes>;

// BLAKE2b-256 (crypto_generichash with a 32-byte output: not a prefix of
// hash512) of the concatenation of `parts`: a package's blob digests, which
// bind each blob's bytes to the signed manifest. Throws CryptoError.
Hash256 hash256(std::span<const std::string_view> parts);

// A fresh MAC key. Throws CryptoError.
MacKey mac_generate_key();

// HMAC-SHA-512-256 (libsodium's crypto_auth) of `message`. Throws CryptoError.
Mac mac_compute(std::string_view message, const MacKey& key);

// Whether `mac` is `key`'s MAC of `message`, compared in constant time.
// Throws CryptoError.
bool mac_verify(std::string_view message, const Mac& mac, const MacKey& key);

// Fills `out` from the system's entropy. Throws CryptoError.
void random_bytes(std::span<uint8_t> out);

// Zeroes `bytes` in a way the compiler keeps (secret keys leaving scope).
void secure_zero(std::span<uint8_t> bytes) noexcept;

}  // namespace kiln::support
