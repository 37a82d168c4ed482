// Signed packages (format 1.2, docs/package-format.md "Signature"): the
// writer's empty signature block, kiln/compiler/package_signing.h filling
// it, the reader verifying it, the runtime's trust policy
// (OpenOptions::trusted_keys, trusted_key_files, KILN_TRUSTED_KEYS), and
// tampering with any part of a signed package; then `kiln keygen`, `kiln
// sign`, `kiln verify --trusted-keys` and `kiln merge --key` as a user runs them.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/abi/package_header.h"
#include "kiln/compiler/package_signing.h"
#include "kiln/package_reader.h"
#include "kiln/package_signature.h"
#include "kiln/runtime.h"
#include "kiln/support/crypto.h"
#include "kiln/support/file_io.h"
#include "kiln/support/hex.h"
#include "kiln/support/key_file.h"
#include "kiln/support/process.h"
#include "test_support/blob_digests.h"
#include "test_support/cpu_test_package.h"
#include "test_support/package_bytes.h"
#include "test_support/scratch_files.h"

namespace {

namespace fs = std::filesystem;
using kiln::UntrustedPackageError;
using kiln::support::Ed25519KeyPair;
using Reason = kiln::UntrustedPackageError::Reason;

constexpr size_t kSignatureField =
    KILN_PACKAGE_SIGNATURE_OFFSET + offsetof(KilnPackageSignature, signature);
constexpr size_t kPublicKeyField =
    KILN_PACKAGE_SIGNATURE_OFFSET + offsetof(KilnPackageSignature, public_key);

const Ed25519KeyPair& signer_keys() {
  static const Ed25519KeyPair pair = kiln::support::ed25519_generate_key_pair();
  return pair;
}
const Ed25519KeyPair& other_keys() {
  static const Ed25519KeyPair pair = kiln::support::ed25519_generate_key_pair();
  return pair;
}

std::string pub_text(const Ed25519KeyPair& pair, std::string_view comment = "") {
  return kiln::support::format_public_key(pair.public_key, comment);
}

using kiln_test::fix_checksum;
using kiln_test::header_of;

std::vector<uint8_t> unsigned_package() {
  static const std::vector<uint8_t> bytes = kiln_test::make_test_package();
  return bytes;
}

std::vector<uint8_t> signed_package(const Ed25519KeyPair& pair = signer_keys()) {
  std::vector<uint8_t> bytes = unsigned_package();
  kiln::compiler::sign_package(bytes, pair.secret_key);
  return bytes;
}

// Opens `bytes` with these options and runs scale_add once: "runs right",
// or the error's code name, with its reason for an UntrustedPackageError.
std::string open_outcome(const std::vector<uint8_t>& bytes, const kiln::OpenOptions& options = {}) {
  try {
    kiln::Package package = kiln::Package::open_memory(kiln_test::as_bytes(bytes), options);
    constexpr int64_t n = 3;
    std::vector<float> x(n * kiln_test::kRowWidth), w(kiln_test::kRowWidth), y(x.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
    for (size_t i = 0; i < w.size(); ++i) w[i] = 0.5f * static_cast<float>(i);
    package.graph("scale_add")
        .call({kiln::TensorView(x.data(), kiln::DType::f32, {n, kiln_test::kRowWidth}),
               kiln::TensorView(w.data(), kiln::DType::f32, {kiln_test::kRowWidth})},
              {kiln::TensorView(y.data(), kiln::DType::f32, {n, kiln_test::kRowWidth})});
    for (size_t i = 0; i < y.size(); ++i) {
      if (y[i] != 2 * x[i] + w[i % w.size()]) return "runs wrong";
    }
    return "runs right";
  } catch (const UntrustedPackageError& e) {
    const char* reasons[] = {"unsigned_package", "unknown_key", "bad_signature"};
    return std::string("untrusted_package: ") + reasons[static_cast<int>(e.reason())];
  } catch (const kiln::Error& e) {
    return std::string(kiln::error_code_name(e.code()));
  }
}

// Where `field` (a pointer into the reader's copy of the package) lies in
// the package's bytes.
size_t offset_in(const kiln::PackageReader& reader, const void* field) {
  return static_cast<size_t>(static_cast<const std::byte*>(field) - reader.file_bytes().data());
}

kiln::OpenOptions trusting(const Ed25519KeyPair& pair) {
  kiln::OpenOptions options;
  options.trusted_keys = {pub_text(pair)};
  return options;
}

TEST(PackageSigning, TheWriterLeavesAnEmptySignatureBlock) {
  const std::vector<uint8_t> bytes = unsigned_package();
  const KilnPackageHeader h = header_of(bytes);
  EXPECT_EQ(h.format_minor, 2);
  EXPECT_EQ(h.header_size, KILN_PACKAGE_SIGNED_HEADER_SIZE);
  EXPECT_EQ(h.manifest_offset, KILN_PACKAGE_SIGNED_HEADER_SIZE);
  for (size_t at = KILN_PACKAGE_SIGNATURE_OFFSET; at < KILN_PACKAGE_SIGNED_HEADER_SIZE; ++at) {
    ASSERT_EQ(bytes[at], 0) << at;
  }
  const kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
  EXPECT_FALSE(reader.signer().has_value());
  EXPECT_EQ(open_outcome(bytes), "runs right");
}

TEST(PackageSigning, SigningFillsOnlyTheBlockAndIsDeterministic) {
  const std::vector<uint8_t> plain = unsigned_package();
  const std::vector<uint8_t> bytes = signed_package();
  ASSERT_EQ(bytes.size(), plain.size());
  for (size_t at = 0; at < bytes.size(); ++at) {
    if (at >= KILN_PACKAGE_SIGNATURE_OFFSET && at < KILN_PACKAGE_SIGNED_HEADER_SIZE) continue;
    ASSERT_EQ(bytes[at], plain[at]) << "byte " << at << " changed";
  }
  EXPECT_EQ(signed_package(), bytes);  // ed25519 is deterministic: reproducible builds

  const kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
  ASSERT_TRUE(reader.signer().has_value());
  EXPECT_EQ(reader.signer()->public_key, signer_keys().public_key);
  EXPECT_EQ(reader.signer()->key_id, kiln::support::key_id(signer_keys().public_key));

  // The signature is of BLAKE2b-512(header with the signature zeroed,
  // manifest), as package_signature.h defines it.
  const KilnPackageHeader h = header_of(bytes);
  std::string head(reinterpret_cast<const char*>(bytes.data()), h.header_size);
  std::fill(head.begin() + kSignatureField, head.begin() + kSignatureField + 64, '\0');
  const std::string_view parts[] = {
      head, std::string_view(reinterpret_cast<const char*>(bytes.data()) + h.manifest_offset,
                             h.manifest_size)};
  const kiln::support::Hash512 digest = kiln::support::hash512(parts);
  EXPECT_EQ(kiln::package_signed_message(kiln_test::as_bytes(bytes), h), digest);
  kiln::support::Ed25519Signature signature;
  std::memcpy(signature.data(), bytes.data() + kSignatureField, signature.size());
  EXPECT_TRUE(kiln::support::ed25519_verify(kiln::message_view(digest), signature,
                                            signer_keys().public_key));

  // Signing again with another key replaces the signature.
  std::vector<uint8_t> resigned = bytes;
  kiln::compiler::sign_package(resigned, other_keys().secret_key);
  EXPECT_EQ(resigned, signed_package(other_keys()));
}

TEST(PackageSigning, TheTrustPolicy) {
  const std::vector<uint8_t> plain = unsigned_package();
  const std::vector<uint8_t> bytes = signed_package();
  // No trusted keys: anything valid opens.
  EXPECT_EQ(open_outcome(plain), "runs right");
  EXPECT_EQ(open_outcome(bytes), "runs right");
  // Its key trusted: the signed package opens, the unsigned one does not.
  EXPECT_EQ(open_outcome(bytes, trusting(signer_keys())), "runs right");
  EXPECT_EQ(open_outcome(plain, trusting(signer_keys())), "untrusted_package: unsigned_package");
  // Another key trusted: refused, naming the signer's key and the trusted one.
  EXPECT_EQ(open_outcome(bytes, trusting(other_keys())), "untrusted_package: unknown_key");
  try {
    kiln::Package::open_memory(kiln_test::as_bytes(bytes), trusting(other_keys()));
  } catch (const UntrustedPackageError& e) {
    const std::string signer_id = kiln::support::key_id(signer_keys().public_key);
    EXPECT_EQ(e.key_id(), signer_id);
    EXPECT_EQ(e.code(), kiln::ErrorCode::untrusted_package);
    const std::string message = e.what();
    EXPECT_NE(message.find("signed by key " + signer_id + ", which is not trusted here"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find(kiln::support::key_id(other_keys().public_key) +
                           " from OpenOptions::trusted_keys[0]"),
              std::string::npos)
        << message;
  }
  // Either key of two trusted.
  kiln::OpenOptions both = trusting(other_keys());
  both.trusted_keys.push_back(pub_text(signer_keys(), "release key"));
  EXPECT_EQ(open_outcome(bytes, both), "runs right");
}

TEST(PackageSigning, TrustedKeyFilesAndTheEnvironment) {
  const fs::path dir = kiln_test::fresh_dir("package_signing/trust");
  kiln::support::write_file_atomic(dir / "signer.pub", pub_text(signer_keys()));
  kiln::support::write_file_atomic(dir / "other.pub", pub_text(other_keys()));
  kiln::support::write_file_atomic(dir / "bad.pub", "kiln-ed25519-public 12\n");
  const std::vector<uint8_t> bytes = signed_package();

  kiln::OpenOptions files;
  files.trusted_key_files = {dir / "signer.pub"};
  EXPECT_EQ(open_outcome(bytes, files), "runs right");
  files.trusted_key_files = {dir / "other.pub"};
  EXPECT_EQ(open_outcome(bytes, files), "untrusted_package: unknown_key");
  files.trusted_key_files = {dir / "missing.pub"};
  EXPECT_EQ(open_outcome(bytes, files), "io");
  files.trusted_key_files = {dir / "bad.pub"};
  EXPECT_EQ(open_outcome(bytes, files), "invalid_argument");
  kiln::OpenOptions text;
  text.trusted_keys = {"not a key"};
  EXPECT_EQ(open_outcome(bytes, text), "invalid_argument");

  {
    const std::string list =
        ":" + (dir / "other.pub").string() + "::" + (dir / "signer.pub").string();
    kiln_test::ScopedEnv env("KILN_TRUSTED_KEYS", list.c_str());
    EXPECT_EQ(open_outcome(bytes), "runs right");
    EXPECT_EQ(open_outcome(unsigned_package()), "untrusted_package: unsigned_package");
  }
  {
    kiln_test::ScopedEnv env("KILN_TRUSTED_KEYS", (dir / "other.pub").c_str());
    EXPECT_EQ(open_outcome(bytes), "untrusted_package: unknown_key");
    // Keys from the options and the environment add up.
    EXPECT_EQ(open_outcome(bytes, trusting(signer_keys())), "runs right");
  }
  {
    // A trust configuration that cannot be read fails closed, whatever the package.
    kiln_test::ScopedEnv env("KILN_TRUSTED_KEYS", (dir / "missing.pub").c_str());
    EXPECT_EQ(open_outcome(unsigned_package()), "io");
    try {
      kiln::Package::open_memory(kiln_test::as_bytes(bytes));
    } catch (const kiln::Error& e) {
      EXPECT_NE(std::string(e.what()).find("(listed in KILN_TRUSTED_KEYS)"), std::string::npos)
          << e.what();
    }
  }
}

TEST(PackageSigning, TamperingIsRefusedWithOrWithoutTrustedKeys) {
  const std::vector<uint8_t> bytes = signed_package();
  const KilnPackageHeader h = header_of(bytes);
  const kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
  const uint64_t blob_offset = reader.manifest().blobs()->Get(0)->offset();
  const size_t digest_at = offset_in(reader, reader.manifest().blobs()->Get(0)->digest()->data());
  struct Case {
    const char* what;
    size_t at;
    bool recompute_checksum;  // as an attacker would
    std::string outcome;
  };
  const std::vector<Case> cases = {
      {"header flags", offsetof(KilnPackageHeader, flags), false,
       "untrusted_package: bad_signature"},
      {"header format_minor", offsetof(KilnPackageHeader, format_minor), false,
       "untrusted_package: bad_signature"},
      {"manifest", h.manifest_offset + h.manifest_size / 2, false, "package_checksum_mismatch"},
      {"manifest, checksum recomputed", h.manifest_offset + h.manifest_size / 2, true,
       "untrusted_package: bad_signature"},
      {"blob", blob_offset + 100, false, "package_checksum_mismatch"},
      {"blob, checksum recomputed", blob_offset + 100, true, "untrusted_package: bad_signature"},
      {"blob digest, checksum recomputed", digest_at + 5, true, "untrusted_package: bad_signature"},
      {"signature", kSignatureField + 10, false, "untrusted_package: bad_signature"},
      {"public key", kPublicKeyField + 3, false, "untrusted_package: bad_signature"},
      {"reserved tail", KILN_PACKAGE_SIGNED_HEADER_SIZE - 1, false,
       "untrusted_package: bad_signature"},
      {"algorithm", KILN_PACKAGE_SIGNATURE_OFFSET, false, "package_corrupt"},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> copy = bytes;
    copy[c.at] ^= 0x04;
    if (c.recompute_checksum) fix_checksum(copy);
    EXPECT_EQ(open_outcome(copy), c.outcome) << c.what;
    EXPECT_EQ(open_outcome(copy, trusting(signer_keys())), c.outcome) << c.what;
  }
  // Every single-bit flip of the signature block is refused.
  for (size_t at = KILN_PACKAGE_SIGNATURE_OFFSET; at < KILN_PACKAGE_SIGNED_HEADER_SIZE; ++at) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> copy = bytes;
      copy[at] ^= static_cast<uint8_t>(1u << bit);
      const std::string outcome = open_outcome(copy);
      EXPECT_TRUE(outcome == "untrusted_package: bad_signature" || outcome == "package_corrupt")
          << "byte " << at << " bit " << bit << ": " << outcome;
    }
  }
  // The signature of one package on another: refused.
  std::vector<uint8_t> other = kiln_test::make_test_package({{.name = "other_graph"}});
  std::memcpy(other.data() + KILN_PACKAGE_SIGNATURE_OFFSET,
              bytes.data() + KILN_PACKAGE_SIGNATURE_OFFSET, KILN_PACKAGE_SIGNATURE_SIZE);
  EXPECT_EQ(open_outcome(other), "untrusted_package: bad_signature");
  // The message names the key.
  std::vector<uint8_t> copy = bytes;
  copy[kSignatureField] ^= 1;
  try {
    kiln::PackageReader::open_memory(kiln_test::as_bytes(copy));
    ADD_FAILURE() << "a damaged signature verified";
  } catch (const UntrustedPackageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "kiln: package signature by key " + kiln::support::key_id(signer_keys().public_key) +
                  " does not verify: the package was changed after it was signed");
  }
}

TEST(PackageSigning, EveryBlobHasTheDigestOfItsStoredBytes) {
  const std::vector<uint8_t> bytes = signed_package();
  const kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
  ASSERT_GT(reader.manifest().blobs()->size(), 0u);
  EXPECT_EQ(kiln_test::blob_digest_problems(reader), "");
}

// The attack XXH3 cannot stop: blob bytes replaced by others with the same
// XXH3-128 hash, under the signed manifest. A collision is not crafted here;
// the package is made to be in the state one would leave it in instead: the
// manifest's XXH3 hash and the file's checksum match the new bytes, and the
// signature verifies (it is made after the change), so only the digest,
// still of the old bytes, tells.
TEST(PackageSigning, ABlobWhoseXxh3MatchesButNotItsDigestIsRefused) {
  std::vector<uint8_t> bytes = unsigned_package();
  {
    const kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
    const kiln::fb::Blob* blob = reader.manifest().blobs()->Get(0);
    bytes[blob->offset() + blob->stored_size() / 2] ^= 0x20;
    const XXH128_hash_t xxh3 = XXH3_128bits(bytes.data() + blob->offset(), blob->stored_size());
    const kiln::fb::Hash128 hash(xxh3.low64, xxh3.high64);
    std::memcpy(bytes.data() + offset_in(reader, blob->hash()), &hash, sizeof hash);
    fix_checksum(bytes);
  }
  std::vector<uint8_t> signed_bytes = bytes;
  kiln::compiler::sign_package(signed_bytes, signer_keys().secret_key);

  // Opening checks no blob (they are checked on first use): it succeeds.
  const kiln::PackageReader reader =
      kiln::PackageReader::open_memory(kiln_test::as_bytes(signed_bytes));
  ASSERT_TRUE(reader.signer().has_value());
  try {
    reader.blob(0);
    ADD_FAILURE() << "a blob that does not match its signed digest was used";
  } catch (const UntrustedPackageError& e) {
    EXPECT_EQ(e.reason(), Reason::bad_signature);
    EXPECT_EQ(e.key_id(), reader.signer()->key_id);
    const kiln::fb::Blob* blob = reader.manifest().blobs()->Get(0);
    EXPECT_EQ(std::string(e.what()),
              "kiln: blob 0 (" + std::to_string(blob->stored_size()) + " bytes at offset " +
                  std::to_string(blob->offset()) +
                  ") does not match its BLAKE2b-256 digest in the manifest signed by key " +
                  reader.signer()->key_id + ": the blob was changed after the package was signed");
  }
  EXPECT_THROW(reader.verify_all_blobs(), UntrustedPackageError);
  // Through a call, before the shared object is loaded, whatever the trust
  // configuration.
  EXPECT_EQ(open_outcome(signed_bytes), "untrusted_package: bad_signature");
  EXPECT_EQ(open_outcome(signed_bytes, trusting(signer_keys())),
            "untrusted_package: bad_signature");
  // Unsigned, the digest still catches it, as damage.
  EXPECT_EQ(open_outcome(bytes), "kernel_load_failed");
  const kiln::PackageReader plain = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
  try {
    plain.blob(0);
    ADD_FAILURE() << "a blob that does not match its digest was used";
  } catch (const kiln::PackageError& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::package_checksum_mismatch);
    EXPECT_NE(std::string(e.what()).find("blob 0 ("), std::string::npos) << e.what();
  }
}

// A package from a writer that gives no digests: unsigned it opens (the
// digest is checked when present); signed it is refused at open, since its
// signature would not bind the blobs' bytes.
TEST(PackageSigning, ASignedPackageWithoutDigestsIsRefused) {
  std::vector<uint8_t> bytes = unsigned_package();
  {
    const kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
    kiln::fb::ManifestT manifest;
    reader.manifest().UnPackTo(&manifest);
    for (auto& blob : manifest.blobs) blob->digest.clear();
    kiln_test::replace_manifest(bytes, manifest);
  }
  EXPECT_EQ(open_outcome(bytes), "runs right");
  kiln::compiler::sign_package(bytes, signer_keys().secret_key);
  EXPECT_EQ(open_outcome(bytes), "package_corrupt");
  EXPECT_EQ(open_outcome(bytes, trusting(signer_keys())), "package_corrupt");
  try {
    kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
    ADD_FAILURE() << "a signed package without blob digests opened";
  } catch (const kiln::PackageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "kiln: package is signed by key " + kiln::support::key_id(signer_keys().public_key) +
                  " but blob 0 has no digest, so the signature does not bind its bytes: a signed "
                  "package gives every blob's BLAKE2b-256 digest (rebuild it with this Kiln and "
                  "sign it again)");
  }
}

TEST(PackageSigning, ADigestOfAnotherSizeIsCorrupt) {
  std::vector<uint8_t> bytes = unsigned_package();
  {
    const kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
    kiln::fb::ManifestT manifest;
    reader.manifest().UnPackTo(&manifest);
    manifest.blobs[0]->digest.resize(16);
    kiln_test::replace_manifest(bytes, manifest);
  }
  EXPECT_EQ(open_outcome(bytes), "package_corrupt");
}

TEST(PackageSigning, AnUnsignedBlockMustBeZero) {
  std::vector<uint8_t> bytes = unsigned_package();
  bytes[kPublicKeyField] = 1;  // algorithm still 0 (unsigned)
  EXPECT_EQ(open_outcome(bytes), "package_corrupt");
}

TEST(PackageSigning, AHeaderWithoutABlockReadsAsUnsignedAndCannotBeSigned) {
  // A format 1.1 header: 64 bytes, so what follows it (here the block's
  // zeros, before the manifest) is checksummed padding.
  std::vector<uint8_t> bytes = unsigned_package();
  KilnPackageHeader h = header_of(bytes);
  h.format_minor = 1;
  h.header_size = KILN_PACKAGE_HEADER_SIZE;
  std::memcpy(bytes.data(), &h, sizeof h);
  fix_checksum(bytes);
  const kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
  EXPECT_FALSE(reader.signer().has_value());
  EXPECT_EQ(open_outcome(bytes), "runs right");
  EXPECT_EQ(open_outcome(bytes, trusting(signer_keys())), "untrusted_package: unsigned_package");
  try {
    kiln::compiler::sign_package(bytes, signer_keys().secret_key);
    ADD_FAILURE() << "signed a package without a signature block";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("format 1.1, whose 64-byte header has no signature block"),
              std::string::npos)
        << e.what();
  }
}

// ---- the CLI ----

kiln::support::ProcessResult kiln_cli(std::vector<std::string> args) {
  args.insert(args.begin(), KILN_TEST_KILN_CLI);
  return kiln::support::run_process(args);
}

TEST(SigningCli, KeygenSignVerifyMerge) {
  const fs::path dir = kiln_test::fresh_dir("package_signing/cli");
  const fs::path pkg = dir / "p.kiln";
  kiln::support::write_file_atomic(
      pkg, std::string(reinterpret_cast<const char*>(unsigned_package().data()),
                       unsigned_package().size()));

  auto r = kiln_cli({"keygen", "--out", (dir / "release").string(), "--comment", "release CI"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const kiln::support::PublicKeyFile pub = kiln::support::read_public_key_file(dir / "release.pub");
  const std::string id = kiln::support::key_id(pub.key);
  EXPECT_EQ(pub.comment, "release CI");
  EXPECT_NE(r.output.find("key id " + id), std::string::npos) << r.output;
  // Never overwrites a key.
  r = kiln_cli({"keygen", "-o", (dir / "release").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("File exists"), std::string::npos) << r.output;
  ASSERT_EQ(kiln_cli({"keygen", "-o", (dir / "other").string()}).exit_code, 0);

  r = kiln_cli({"verify", pkg.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\nunsigned\n"), std::string::npos) << r.output;
  r = kiln_cli({"verify", pkg.string(), "--trusted-keys", (dir / "release.pub").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("error[untrusted_package]: kiln: package is unsigned"), std::string::npos)
      << r.output;

  // Signed to another file, then in place.
  r = kiln_cli({"sign", pkg.string(), "--key", (dir / "release.key").string(), "-o",
                (dir / "signed.kiln").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "signed " + (dir / "signed.kiln").string() + " with key " + id + " (release CI)\n");
  r = kiln_cli({"sign", pkg.string(), "-k", (dir / "release.key").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(kiln_test::slurp(pkg), kiln_test::slurp(dir / "signed.kiln"));
  // Its public key is not a signing key.
  r = kiln_cli({"sign", pkg.string(), "-k", (dir / "release.pub").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("got a public key (a .pub file: give the .key file)"), std::string::npos)
      << r.output;

  r = kiln_cli({"verify", pkg.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("signed by key " + id + " (signature valid; not checked"),
            std::string::npos)
      << r.output;
  r = kiln_cli({"verify", pkg.string(), "--trusted-keys",
                (dir / "other.pub").string() + ":" + (dir / "release.pub").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("signed by key " + id + " (release CI), trusted (key file '" +
                          (dir / "release.pub").string() + "' (listed in --trusted-keys))"),
            std::string::npos)
      << r.output;
  r = kiln_cli({"verify", pkg.string(), "--trusted-keys", (dir / "other.pub").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("error[untrusted_package]: kiln: package is signed by key " + id),
            std::string::npos)
      << r.output;

  // A damaged signature: verify and sign both refuse the package.
  std::string damaged = kiln_test::slurp(pkg);
  damaged[kSignatureField] ^= 1;
  kiln::support::write_file_atomic(dir / "damaged.kiln", damaged);
  r = kiln_cli({"verify", (dir / "damaged.kiln").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("error[untrusted_package]: kiln: package signature by key " + id +
                          " does not verify"),
            std::string::npos)
      << r.output;
  r = kiln_cli({"sign", (dir / "damaged.kiln").string(), "-k", (dir / "other.key").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(kiln_test::slurp(dir / "damaged.kiln"), damaged);

  // merge: new bytes, so unsigned unless --key signs them.
  r = kiln_cli({"merge", pkg.string(), (dir / "signed.kiln").string(), "-o",
                (dir / "merged.kiln").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("merged.kiln is unsigned (no input's signature carries over; pass "
                          "--key K to sign it)\n"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(kiln::PackageReader::open_file(dir / "merged.kiln").signer().has_value());
  r = kiln_cli({"merge", pkg.string(), (dir / "signed.kiln").string(), "-o",
                (dir / "merged.kiln").string(), "--key", (dir / "other.key").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string other_id =
      kiln::support::key_id(kiln::support::read_public_key_file(dir / "other.pub").key);
  EXPECT_NE(r.output.find("with key " + other_id), std::string::npos) << r.output;
  EXPECT_EQ(kiln::PackageReader::open_file(dir / "merged.kiln").signer()->key_id, other_id);

  // inspect says who signed, and each blob's digest.
  const kiln::PackageReader reader = kiln::PackageReader::open_file(pkg);
  const auto* digest = reader.manifest().blobs()->Get(0)->digest();
  const std::string digest_hex = kiln::support::hex_bytes({digest->data(), digest->size()});
  r = kiln_cli({"inspect", pkg.string()});
  EXPECT_NE(r.output.find("\nsigned by key " + id + " (ed25519 " +
                          kiln::support::hex_bytes(pub.key) + ";"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(", digest " + digest_hex + "\n"), std::string::npos) << r.output;
  r = kiln_cli({"inspect", "--json", pkg.string()});
  EXPECT_NE(r.output.find("\"signed_by\":\"" + kiln::support::hex_bytes(pub.key) + "\""),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("\"digest\":\"" + digest_hex + "\""), std::string::npos) << r.output;
  // verify checks the digests and says so.
  r = kiln_cli({"verify", pkg.string()});
  EXPECT_NE(r.output.find("\ndigests: every blob matches its BLAKE2b-256 digest\n"),
            std::string::npos)
      << r.output;
}

}  // namespace
