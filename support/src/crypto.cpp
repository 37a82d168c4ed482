#include "kiln/support/crypto.h"

#include <sodium.h>

#include <cstring>

namespace kiln::support {
namespace {

static_assert(kEd25519PublicKeyBytes == crypto_sign_ed25519_PUBLICKEYBYTES);
static_assert(kEd25519SecretKeyBytes == crypto_sign_ed25519_SECRETKEYBYTES);
static_assert(kEd25519SignatureBytes == crypto_sign_ed25519_BYTES);
static_assert(kMacKeyBytes == crypto_auth_KEYBYTES);
static_assert(kMacBytes == crypto_auth_BYTES);

// sodium_init is thread safe and idempotent; it fails only when the system
// gives no entropy, and then nothing here may run.
void ensure_sodium() {
  if (sodium_init() < 0) {
    throw CryptoError(
        "kiln: libsodium could not initialise (sodium_init failed: no entropy source)");
  }
}

const unsigned char* bytes_of(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

}  // namespace

Ed25519KeyPair ed25519_generate_key_pair() {
  ensure_sodium();
  Ed25519KeyPair pair{};
  crypto_sign_ed25519_keypair(pair.public_key.data(), pair.secret_key.data());
  return pair;
}

Ed25519PublicKey ed25519_public_key_of(const Ed25519SecretKey& secret_key) noexcept {
  Ed25519PublicKey public_key{};
  std::memcpy(public_key.data(), secret_key.data() + 32, public_key.size());
  return public_key;
}

Ed25519Signature ed25519_sign(std::string_view message, const Ed25519SecretKey& secret_key) {
  ensure_sodium();
  Ed25519Signature signature{};
  crypto_sign_ed25519_detached(signature.data(), nullptr, bytes_of(message), message.size(),
                               secret_key.data());
  return signature;
}

bool ed25519_verify(std::string_view message, const Ed25519Signature& signature,
                    const Ed25519PublicKey& public_key) {
  ensure_sodium();
  return crypto_sign_ed25519_verify_detached(signature.data(), bytes_of(message), message.size(),
                                             public_key.data()) == 0;
}

namespace {

// BLAKE2b of the concatenation of `parts`, with out.size() bytes of output
// (part of BLAKE2b's parameters, so each size is a hash of its own).
void generic_hash(std::span<const std::string_view> parts, std::span<uint8_t> out) {
  ensure_sodium();
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, out.size());
  for (const std::string_view part : parts) {
    crypto_generichash_update(&state, bytes_of(part), part.size());
  }
  crypto_generichash_final(&state, out.data(), out.size());
}

}  // namespace

Hash512 hash512(std::span<const std::string_view> parts) {
  static_assert(kHash512Bytes == crypto_generichash_BYTES_MAX);
  Hash512 hash{};
  generic_hash(parts, hash);
  return hash;
}

Hash256 hash256(std::span<const std::string_view> parts) {
  static_assert(kHash256Bytes >= crypto_generichash_BYTES_MIN);
  Hash256 hash{};
  generic_hash(parts, hash);
  return hash;
}

MacKey mac_generate_key() {
  ensure_sodium();
  MacKey key{};
  crypto_auth_keygen(key.data());
  return key;
}

Mac mac_compute(std::string_view message, const MacKey& key) {
  ensure_sodium();
  Mac mac{};
  crypto_auth(mac.data(), bytes_of(message), message.size(), key.data());
  return mac;
}

bool mac_verify(std::string_view message, const Mac& mac, const MacKey& key) {
  ensure_sodium();
  return crypto_auth_verify(mac.data(), bytes_of(message), message.size(), key.data()) == 0;
}

void random_bytes(std::span<uint8_t> out) {
  ensure_sodium();
  randombytes_buf(out.data(), out.size());
}

void secure_zero(std::span<uint8_t> bytes) noexcept { sodium_memzero(bytes.data(), bytes.size()); }

}  // namespace kiln::support
