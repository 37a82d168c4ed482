// Signing keys as files: an ed25519 key pair is two one-line text files,
// NAME.pub (give it to whoever must trust what you sign) and NAME.key (keep
// it secret), as `kiln keygen` writes them:
//
//   kiln-ed25519-public <64 hex digits: the public key>[ <comment>]
//   kiln-ed25519-secret <128 hex digits: the seed, then the public key>[ <comment>]
//
// Lowercase hex; the comment (who holds the key, what it signs) is printable
// ASCII; one optional "\n" ends the line, nothing follows it. A key is
// named in messages by its id: the first 16 hex digits of the public key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

#include "kiln/support/crypto.h"

namespace kiln::support {

// What is wrong with a key file; KeyFileError::problem().
enum class KeyFileProblem : uint8_t {
  unreadable,         // missing, unreadable, or larger than kMaxKeyFileBytes
  wrong_kind,         // not "kiln-ed25519-public"/"-secret", or the other one of the two
  wrong_length,       // the key's hex is not 64 (public) or 128 (secret) digits
  bad_hex,            // a character that is not a lowercase hex digit
  bad_comment,        // not printable ASCII, too long, or text after the line
  mismatched_halves,  // a secret key whose public half is not its seed's
};

// A key file (or key text) that is not a key of the kind asked for.
// what(): "kiln: key file 'K.pub': expected ..., got ...".
class KeyFileError : public std::runtime_error {
 public:
  KeyFileError(KeyFileProblem problem, const std::string& message);
  KeyFileProblem problem() const noexcept { return problem_; }

 private:
  KeyFileProblem problem_;
};

inline constexpr std::string_view kPublicKeyHeader = "kiln-ed25519-public";
inline constexpr std::string_view kSecretKeyHeader = "kiln-ed25519-secret";
// Far above a key line with a long comment; a larger file is not a key file.
inline constexpr uint64_t kMaxKeyFileBytes = 4096;
inline constexpr size_t kMaxKeyCommentBytes = 256;
inline constexpr size_t kKeyIdDigits = 16;

struct PublicKeyFile {
  Ed25519PublicKey key{};
  std::string comment;
};

// Zeroes its key when it goes.
struct SecretKeyFile {
  Ed25519SecretKey key{};
  std::string comment;
  SecretKeyFile() = default;
  SecretKeyFile(const SecretKeyFile&) = default;
  SecretKeyFile& operator=(const SecretKeyFile&) = default;
  ~SecretKeyFile() { secure_zero(key); }
};

// The key in `text`, the contents of a .pub (.key) file; `source` names it
// in errors ("key file 'K.pub'", "trusted key 2"). Throws KeyFileError.
PublicKeyFile parse_public_key(std::string_view text, std::string_view source);
SecretKeyFile parse_secret_key(std::string_view text, std::string_view source);

// The key in the file at `path`. Throws KeyFileError (unreadable included).
PublicKeyFile read_public_key_file(const std::filesystem::path& path);
SecretKeyFile read_secret_key_file(const std::filesystem::path& path);

// The file's line, "\n" included. Throws KeyFileError(bad_comment) for a
// comment parse_*_key would refuse.
std::string format_public_key(const Ed25519PublicKey& key, std::string_view comment);
std::string format_secret_key(const Ed25519SecretKey& key, std::string_view comment);

struct KeyPairFiles {
  std::filesystem::path public_file;  // NAME.pub
  std::filesystem::path secret_file;  // NAME.key
};

// Writes `pair` as NAME.key (mode 0600) and NAME.pub (0644), each created
// exclusively: an existing file is never replaced, and neither file is left
// behind when either cannot be written. Throws FileError, KeyFileError.
KeyPairFiles write_key_pair_files(const std::filesystem::path& name, const Ed25519KeyPair& pair,
                                  std::string_view comment);

// The key's id in messages: its first kKeyIdDigits hex digits.
std::string key_id(const Ed25519PublicKey& key);

}  // namespace kiln::support
