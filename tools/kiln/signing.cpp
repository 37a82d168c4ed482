// `kiln keygen --out NAME` and `kiln sign PKG --key K [--out OUT]`: the keys
// packages are signed with, and signing one (docs/package-format.md,
// "Signature").
#include <cstdio>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <vector>

#include "commands.h"
#include "kiln/compiler/package_signing.h"
#include "kiln/package_reader.h"
#include "kiln/support/file_io.h"
#include "kiln/support/key_file.h"

namespace kiln::cli {

int run_keygen(const std::filesystem::path& name, std::string_view comment) {
  try {
    support::Ed25519KeyPair pair = support::ed25519_generate_key_pair();
    const support::KeyPairFiles files = support::write_key_pair_files(name, pair, comment);
    support::secure_zero(pair.secret_key);
    std::printf("wrote %s (secret: keep it so, mode 0600) and %s (public)\nkey id %s\n",
                files.secret_file.c_str(), files.public_file.c_str(),
                support::key_id(pair.public_key).c_str());
    return kExitSuccess;
  } catch (const std::exception& e) {
    return report_failure(e);
  }
}

int run_sign(const std::filesystem::path& package, const std::filesystem::path& key,
             const std::filesystem::path& out) {
  try {
    const support::SecretKeyFile secret = support::read_secret_key_file(key);
    // Only a package that passes every check is signed: a signature vouches
    // for these bytes.
    const PackageReader reader = PackageReader::open_file(package);
    reader.verify_all_blobs();
    const std::span<const std::byte> file = reader.file_bytes();
    std::vector<uint8_t> bytes(file.size());
    std::memcpy(bytes.data(), file.data(), file.size());
    compiler::sign_package(bytes, secret.key);
    // The signature just made must verify as the runtime checks it.
    const PackageReader signed_reader = PackageReader::open_memory(std::as_bytes(std::span(bytes)));
    const std::filesystem::path target = out.empty() ? package : out;
    support::write_file_atomic(
        target, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    std::string line = "signed " + target.string() + " with key " + signed_reader.signer()->key_id;
    if (!secret.comment.empty()) line += " (" + secret.comment + ")";
    if (reader.signer()) line += ", replacing key " + reader.signer()->key_id + "'s signature";
    std::printf("%s\n", line.c_str());
    return kExitSuccess;
  } catch (const std::exception& e) {
    return report_failure(e);
  }
}

}  // namespace kiln::cli
