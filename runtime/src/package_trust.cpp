// The trust policy: which keys a deployment trusts (OpenOptions,
// KILN_TRUSTED_KEYS) and whether a package's signer is one of them.
#include <string>

#include "kiln/error.h"
#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "kiln/support/env.h"
#include "kiln/support/key_file.h"
#include "text.h"

namespace kiln {
namespace {

using detail::cat;

TrustedKey trusted_key(const support::PublicKeyFile& parsed, std::string source) {
  TrustedKey key;
  key.public_key = parsed.key;
  key.key_id = support::key_id(parsed.key);
  key.comment = parsed.comment;
  key.source = std::move(source);
  return key;
}

// The key of the .pub file at `path`; `origin` (KILN_TRUSTED_KEYS, or
// empty) says who listed it.
TrustedKey read_trusted_key_file(const std::filesystem::path& path, std::string_view origin) {
  const std::string listed = origin.empty() ? std::string() : cat(" (listed in ", origin, ")");
  try {
    return trusted_key(support::read_public_key_file(path),
                       cat("key file '", path.string(), "'", listed));
  } catch (const support::KeyFileError& e) {
    throw Error(e.problem() == support::KeyFileProblem::unreadable ? ErrorCode::io
                                                                   : ErrorCode::invalid_argument,
                cat(e.what(), listed));
  }
}

std::string describe_trusted(std::span<const TrustedKey> trusted) {
  std::string text =
      cat(trusted.size(), trusted.size() == 1 ? " trusted key: " : " trusted keys: ");
  for (size_t i = 0; i < trusted.size(); ++i) {
    if (i > 0) text += ", ";
    text += cat(trusted[i].key_id, " from ", trusted[i].source);
  }
  return text;
}

}  // namespace

std::vector<TrustedKey> trusted_key_files_of(std::string_view path_list, std::string_view origin) {
  std::vector<TrustedKey> keys;
  size_t begin = 0;
  while (begin <= path_list.size()) {
    size_t end = path_list.find(':', begin);
    if (end == std::string_view::npos) end = path_list.size();
    const std::string_view entry = path_list.substr(begin, end - begin);
    if (!entry.empty()) keys.push_back(read_trusted_key_file(std::filesystem::path(entry), origin));
    begin = end + 1;
  }
  return keys;
}

std::vector<TrustedKey> trusted_keys_of(const OpenOptions& options) {
  std::vector<TrustedKey> keys;
  for (size_t i = 0; i < options.trusted_keys.size(); ++i) {
    const std::string source = cat("OpenOptions::trusted_keys[", i, "]");
    try {
      keys.push_back(
          trusted_key(support::parse_public_key(options.trusted_keys[i], source), source));
    } catch (const support::KeyFileError& e) {
      throw Error(ErrorCode::invalid_argument, e.what());
    }
  }
  for (const std::filesystem::path& path : options.trusted_key_files) {
    keys.push_back(read_trusted_key_file(path, ""));
  }
  if (const auto list = support::env_value("KILN_TRUSTED_KEYS")) {
    for (TrustedKey& key : trusted_key_files_of(*list, "KILN_TRUSTED_KEYS")) {
      keys.push_back(std::move(key));
    }
  }
  return keys;
}

const TrustedKey* check_package_trust(const PackageReader& reader,
                                      std::span<const TrustedKey> trusted) {
  if (trusted.empty()) return nullptr;
  const std::optional<PackageSigner>& signer = reader.signer();
  if (!signer) {
    throw UntrustedPackageError(
        UntrustedPackageError::Reason::unsigned_package, "",
        cat("kiln: package is unsigned, and only signed packages are trusted here (",
            describe_trusted(trusted), "); sign it with `kiln sign PKG --key K.key`"));
  }
  for (const TrustedKey& key : trusted) {
    if (key.public_key == signer->public_key) return &key;
  }
  throw UntrustedPackageError(UntrustedPackageError::Reason::unknown_key, signer->key_id,
                              cat("kiln: package is signed by key ", signer->key_id,
                                  ", which is not trusted here (", describe_trusted(trusted), ")"));
}

}  // namespace kiln
