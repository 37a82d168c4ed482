// kiln/support/crypto.h: ed25519 against RFC 8032's test vectors and
// HMAC-SHA-512-256 against Python's hmac module, so a wrong key layout or
// primitive shows here and not as a package no one can verify.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "kiln/support/crypto.h"

namespace {
using namespace kiln::support;

template <size_t N>
std::array<uint8_t, N> from_hex(std::string_view hex) {
  std::array<uint8_t, N> out{};
  EXPECT_EQ(hex.size(), 2 * N);
  for (size_t i = 0; i < N; ++i)
    out[i] = static_cast<uint8_t>(std::stoi(std::string(hex.substr(2 * i, 2)), nullptr, 16));
  return out;
}

// RFC 8032, section 7.1, TEST 2: a one-byte message.
constexpr std::string_view kSeed =
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
constexpr std::string_view kPublic =
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
constexpr std::string_view kSignature =
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

Ed25519SecretKey rfc_secret_key() {
  Ed25519SecretKey secret{};
  const auto seed = from_hex<32>(kSeed);
  const auto pub = from_hex<32>(kPublic);
  std::copy(seed.begin(), seed.end(), secret.begin());
  std::copy(pub.begin(), pub.end(), secret.begin() + 32);
  return secret;
}

const std::string kRfcMessage(1, static_cast<char>(0x72));

TEST(SupportCrypto, Ed25519SignsAsRfc8032Says) {
  EXPECT_EQ(ed25519_sign(kRfcMessage, rfc_secret_key()), from_hex<64>(kSignature));
  EXPECT_EQ(ed25519_public_key_of(rfc_secret_key()), from_hex<32>(kPublic));
}

TEST(SupportCrypto, Ed25519VerifiesRfcSignatureAndRefusesAnyChange) {
  const auto pub = from_hex<32>(kPublic);
  auto signature = from_hex<64>(kSignature);
  EXPECT_TRUE(ed25519_verify(kRfcMessage, signature, pub));
  EXPECT_FALSE(ed25519_verify(std::string(1, static_cast<char>(0x73)), signature, pub));
  EXPECT_FALSE(ed25519_verify("", signature, pub));
  signature[10] ^= 0x01;
  EXPECT_FALSE(ed25519_verify(kRfcMessage, signature, pub));
}

TEST(SupportCrypto, GeneratedKeyPairSignsAndOnlyItsPublicKeyVerifies) {
  const Ed25519KeyPair a = ed25519_generate_key_pair();
  const Ed25519KeyPair b = ed25519_generate_key_pair();
  EXPECT_NE(a.public_key, b.public_key);
  EXPECT_EQ(ed25519_public_key_of(a.secret_key), a.public_key);
  const std::string message = "header and manifest of a package";
  const Ed25519Signature signature = ed25519_sign(message, a.secret_key);
  EXPECT_TRUE(ed25519_verify(message, signature, a.public_key));
  EXPECT_FALSE(ed25519_verify(message, signature, b.public_key));
  // A public key that is not a curve point is invalid, not a crash.
  Ed25519PublicKey garbage{};
  garbage.fill(0xff);
  EXPECT_FALSE(ed25519_verify(message, signature, garbage));
}

// Python: hmac.new(bytes(range(32)), b"kiln cache entry", hashlib.sha512).hexdigest()[:64]
TEST(SupportCrypto, MacIsHmacSha512TruncatedTo256Bits) {
  MacKey key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i);
  const Mac expected =
      from_hex<32>("e9dcb076d7b2dc13dd6df15750c5ed9ea175d97a6791b696641bad89c5a66052");
  EXPECT_EQ(mac_compute("kiln cache entry", key), expected);
  EXPECT_TRUE(mac_verify("kiln cache entry", expected, key));
  EXPECT_FALSE(mac_verify("kiln cache entrY", expected, key));
  key[0] ^= 1;
  EXPECT_FALSE(mac_verify("kiln cache entry", expected, key));
}

TEST(SupportCrypto, FreshKeysAndRandomBytesDiffer) {
  EXPECT_NE(mac_generate_key(), mac_generate_key());
  std::array<uint8_t, 32> a{}, b{};
  random_bytes(a);
  random_bytes(b);
  EXPECT_NE(a, b);
  secure_zero(a);
  EXPECT_EQ(a, (std::array<uint8_t, 32>{}));
}

TEST(SupportCrypto, Hash512IsBlake2b512OfThePartsJoined) {
  // RFC 7693, Appendix A: BLAKE2b-512("abc").
  const std::string_view abc[] = {"abc"};
  EXPECT_EQ(kiln::support::hash512(abc),
            from_hex<64>("ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
                         "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"));
  const std::string_view split[] = {"a", "", "bc"};
  EXPECT_EQ(kiln::support::hash512(split), kiln::support::hash512(abc));
  const std::string_view other[] = {"abd"};
  EXPECT_NE(kiln::support::hash512(other), kiln::support::hash512(abc));
}

TEST(SupportCrypto, Hash256IsBlake2b256OfThePartsJoined) {
  // Python's hashlib.blake2b(data, digest_size=32).hexdigest(): the output
  // size is a BLAKE2b parameter, so this is not a prefix of BLAKE2b-512.
  const std::string_view abc[] = {"abc"};
  EXPECT_EQ(kiln::support::hash256(abc),
            from_hex<32>("bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"));
  const std::string_view nothing[] = {""};
  EXPECT_EQ(kiln::support::hash256(nothing),
            from_hex<32>("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"));
  EXPECT_EQ(kiln::support::hash256({}), kiln::support::hash256(nothing));
  const std::string_view split[] = {"a", "", "bc"};
  EXPECT_EQ(kiln::support::hash256(split), kiln::support::hash256(abc));
  const std::string_view other[] = {"abd"};
  EXPECT_NE(kiln::support::hash256(other), kiln::support::hash256(abc));
}

}  // namespace
