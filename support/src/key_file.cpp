#include "kiln/support/key_file.h"

#include <cerrno>
#include <cstring>
#include <optional>
#include <span>
#include <utility>

#include "kiln/support/file_io.h"
#include "kiln/support/hex.h"

namespace kiln::support {
namespace {

// Zeroes a string that held a secret key's text when it goes.
struct ZeroOnExit {
  std::string& text;
  ~ZeroOnExit() { secure_zero({reinterpret_cast<uint8_t*>(text.data()), text.size()}); }
};

[[noreturn]] void fail(KeyFileProblem problem, std::string_view source, const std::string& what) {
  throw KeyFileError(problem, "kiln: " + std::string(source) + ": " + what);
}

// A key file is never replaced: another key under the same name may be in
// use (a deployment trusts its .pub, a build signs with its .key).
void create_new_file(const std::filesystem::path& path, std::string_view text, FileMode mode) {
  if (!create_file_atomic(path, text, mode)) {
    throw FileError("write", path,
                    std::string(std::strerror(EEXIST)) + ": a key file is never replaced", EEXIST);
  }
}

// The text as a message shows it: at most 40 characters, non-printable
// bytes escaped, so hostile input cannot garble a terminal.
std::string shown(std::string_view text) {
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < 40; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      constexpr char kDigits[] = "0123456789abcdef";
      out += "\\x";
      out += kDigits[c >> 4];
      out += kDigits[c & 0xF];
    }
  }
  out += text.size() > 40 ? "'..." : "'";
  return out;
}

bool is_printable_ascii(std::string_view text) {
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

void check_comment(std::string_view comment, std::string_view source) {
  if (comment.size() > kMaxKeyCommentBytes) {
    fail(KeyFileProblem::bad_comment, source,
         "expected a comment of at most " + std::to_string(kMaxKeyCommentBytes) + " bytes, got " +
             std::to_string(comment.size()));
  }
  if (!is_printable_ascii(comment)) {
    fail(KeyFileProblem::bad_comment, source,
         "expected one line of printable ASCII after the key, got " + shown(comment));
  }
}

// Splits "HEADER HEX[ COMMENT][\n]" into its key hex and comment, checking
// the header and everything but the hex digits.
struct KeyLine {
  std::string_view hex;
  std::string_view comment;
};

KeyLine split_key_line(std::string_view text, std::string_view header, std::string_view other,
                       std::string_view source) {
  if (text.ends_with('\n')) text.remove_suffix(1);
  const size_t space = text.find(' ');
  const std::string_view first = text.substr(0, space);
  if (first != header) {
    const std::string expected = "expected a line starting '" + std::string(header) + " '";
    if (first == other) {
      fail(KeyFileProblem::wrong_kind, source,
           expected + ", got a " +
               (other == kSecretKeyHeader ? "secret key (a .key file: give the .pub file)"
                                          : "public key (a .pub file: give the .key file)"));
    }
    fail(KeyFileProblem::wrong_kind, source, expected + ", got " + shown(text));
  }
  if (space == std::string_view::npos) {
    fail(KeyFileProblem::wrong_length, source,
         "expected the key's hex digits after '" + std::string(header) + "', got none");
  }
  std::string_view rest = text.substr(space + 1);
  const size_t end = rest.find(' ');
  KeyLine line{rest.substr(0, end), {}};
  if (end != std::string_view::npos) line.comment = rest.substr(end + 1);
  check_comment(line.comment, source);
  return line;
}

void parse_key_hex(std::string_view hex, std::span<uint8_t> out, std::string_view what,
                   std::string_view source) {
  const std::string expected = "expected " + std::string(what) + " of " +
                               std::to_string(2 * out.size()) + " lowercase hex digits";
  if (hex.size() != 2 * out.size()) {
    fail(KeyFileProblem::wrong_length, source,
         expected + ", got " + std::to_string(hex.size()) + " characters");
  }
  if (!parse_hex_bytes(hex, out)) {
    fail(KeyFileProblem::bad_hex, source, expected + ", got " + shown(hex));
  }
}

std::string key_file_source(const std::filesystem::path& path) {
  return "key file '" + path.string() + "'";
}

std::string read_key_text(const std::filesystem::path& path) {
  std::optional<std::string> text;
  try {
    text = read_file(path, kMaxKeyFileBytes);
  } catch (const FileError& e) {
    fail(KeyFileProblem::unreadable, key_file_source(path), e.reason());
  }
  if (!text) fail(KeyFileProblem::unreadable, key_file_source(path), "no such file");
  return std::move(*text);
}

}  // namespace

KeyFileError::KeyFileError(KeyFileProblem problem, const std::string& message)
    : std::runtime_error(message), problem_(problem) {}

PublicKeyFile parse_public_key(std::string_view text, std::string_view source) {
  const KeyLine line = split_key_line(text, kPublicKeyHeader, kSecretKeyHeader, source);
  PublicKeyFile out;
  parse_key_hex(line.hex, out.key, "a public key", source);
  out.comment = line.comment;
  return out;
}

SecretKeyFile parse_secret_key(std::string_view text, std::string_view source) {
  const KeyLine line = split_key_line(text, kSecretKeyHeader, kPublicKeyHeader, source);
  SecretKeyFile out;
  parse_key_hex(line.hex, out.key, "a secret key", source);
  out.comment = line.comment;
  // libsodium keeps the public key beside the seed and signs with both: a
  // damaged or edited half would sign what its .pub never verifies.
  constexpr std::string_view kProbe = "kiln key check";
  if (!ed25519_verify(kProbe, ed25519_sign(kProbe, out.key), ed25519_public_key_of(out.key))) {
    fail(KeyFileProblem::mismatched_halves, source,
         "expected a secret key whose last 64 hex digits are its seed's public key, got "
         "halves that do not match (the file is damaged or edited)");
  }
  return out;
}

PublicKeyFile read_public_key_file(const std::filesystem::path& path) {
  return parse_public_key(read_key_text(path), key_file_source(path));
}

SecretKeyFile read_secret_key_file(const std::filesystem::path& path) {
  std::string text = read_key_text(path);
  const ZeroOnExit wipe{text};
  return parse_secret_key(text, key_file_source(path));
}

std::string format_public_key(const Ed25519PublicKey& key, std::string_view comment) {
  check_comment(comment, "key comment");
  std::string line = std::string(kPublicKeyHeader) + " " + hex_bytes(key);
  if (!comment.empty()) line.append(" ").append(comment);
  return line + "\n";
}

std::string format_secret_key(const Ed25519SecretKey& key, std::string_view comment) {
  check_comment(comment, "key comment");
  std::string line = std::string(kSecretKeyHeader) + " " + hex_bytes(key);
  if (!comment.empty()) line.append(" ").append(comment);
  return line + "\n";
}

KeyPairFiles write_key_pair_files(const std::filesystem::path& name, const Ed25519KeyPair& pair,
                                  std::string_view comment) {
  KeyPairFiles files{name, name};
  files.public_file += ".pub";
  files.secret_file += ".key";
  const std::string public_text = format_public_key(pair.public_key, comment);
  std::string secret_text = format_secret_key(pair.secret_key, comment);
  const ZeroOnExit wipe{secret_text};
  // The .pub first: when it exists already, no secret is written at all.
  create_new_file(files.public_file, public_text, FileMode::shared);
  try {
    create_new_file(files.secret_file, secret_text, FileMode::owner_only);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(files.public_file, ignored);
    throw;
  }
  return files;
}

std::string key_id(const Ed25519PublicKey& key) {
  return hex_bytes(std::span(key).first(kKeyIdDigits / 2));
}

}  // namespace kiln::support
