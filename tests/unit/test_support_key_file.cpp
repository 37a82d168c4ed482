// kiln/support/key_file.h: key files as `kiln keygen` writes them, read back,
// and hostile ones refused with the problem named.
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "kiln/support/crypto.h"
#include "kiln/support/file_io.h"
#include "kiln/support/hex.h"
#include "kiln/support/key_file.h"
#include "test_support/scratch_files.h"

namespace {

namespace fs = std::filesystem;
using kiln::support::KeyFileError;
using kiln::support::KeyFileProblem;
using kiln::support::parse_public_key;
using kiln::support::parse_secret_key;

// The problem parse_* reports for `text`, with its message.
template <typename Parse>
std::pair<KeyFileProblem, std::string> problem_of(Parse parse, const std::string& text) {
  try {
    parse(text, "key file 'k'");
  } catch (const KeyFileError& e) {
    return {e.problem(), e.what()};
  }
  ADD_FAILURE() << "accepted: " << text;
  return {KeyFileProblem::unreadable, ""};
}

const std::string kPublicHex(64, 'a');

TEST(SupportKeyFile, RoundTripsAPairWithAComment) {
  const kiln::support::Ed25519KeyPair pair = kiln::support::ed25519_generate_key_pair();
  const std::string pub = kiln::support::format_public_key(pair.public_key, "alice, CI");
  const std::string key = kiln::support::format_secret_key(pair.secret_key, "alice, CI");
  EXPECT_EQ(pub,
            "kiln-ed25519-public " + kiln::support::hex_bytes(pair.public_key) + " alice, CI\n");
  EXPECT_TRUE(key.starts_with("kiln-ed25519-secret " + kiln::support::hex_bytes(pair.secret_key)));
  const auto parsed_pub = parse_public_key(pub, "pub");
  const auto parsed_key = parse_secret_key(key, "key");
  EXPECT_EQ(parsed_pub.key, pair.public_key);
  EXPECT_EQ(parsed_pub.comment, "alice, CI");
  EXPECT_EQ(parsed_key.key, pair.secret_key);
  EXPECT_EQ(parsed_key.comment, "alice, CI");
  // Without a comment, and without the final newline.
  EXPECT_EQ(parse_public_key("kiln-ed25519-public " + kPublicHex, "pub").comment, "");
  EXPECT_EQ(kiln::support::key_id(pair.public_key),
            kiln::support::hex_bytes(pair.public_key).substr(0, 16));
}

TEST(SupportKeyFile, HostilePublicKeysAreRefusedWithTheProblem) {
  const struct {
    std::string text;
    KeyFileProblem problem;
    std::string says;
  } cases[] = {
      {"", KeyFileProblem::wrong_kind, "expected a line starting 'kiln-ed25519-public '"},
      {"ssh-ed25519 AAAAC3Nza", KeyFileProblem::wrong_kind, "got 'ssh-ed25519 AAAAC3Nza'"},
      {"kiln-ed25519-secret " + std::string(128, 'a'), KeyFileProblem::wrong_kind,
       "got a secret key (a .key file: give the .pub file)"},
      {"kiln-ed25519-public", KeyFileProblem::wrong_length, "got none"},
      {"kiln-ed25519-public " + std::string(63, 'a'), KeyFileProblem::wrong_length,
       "expected a public key of 64 lowercase hex digits, got 63 characters"},
      {"kiln-ed25519-public " + std::string(66, 'a'), KeyFileProblem::wrong_length,
       "got 66 characters"},
      {"kiln-ed25519-public " + std::string(63, 'a') + "g", KeyFileProblem::bad_hex,
       "lowercase hex digits, got 'aaaa"},
      {"kiln-ed25519-public " + std::string(64, 'A'), KeyFileProblem::bad_hex, "got 'AAAA"},
      {"kiln-ed25519-public  " + kPublicHex, KeyFileProblem::wrong_length, "got 0 characters"},
      {"kiln-ed25519-public " + kPublicHex +
           " a\x01"
           "b",
       KeyFileProblem::bad_comment, "printable ASCII after the key, got 'a\\x01b'"},
      {"kiln-ed25519-public " + kPublicHex + " a\nsecond line", KeyFileProblem::bad_comment,
       "got 'a\\x0asecond line'"},
      {"kiln-ed25519-public " + kPublicHex + "\n\n", KeyFileProblem::wrong_length,
       "got 65 characters"},
      {"kiln-ed25519-public " + kPublicHex + " " + std::string(300, 'c'),
       KeyFileProblem::bad_comment, "at most 256 bytes, got 300"},
  };
  for (const auto& c : cases) {
    const auto [problem, message] = problem_of(parse_public_key, c.text);
    EXPECT_EQ(problem, c.problem) << c.text << ": " << message;
    EXPECT_NE(message.find("kiln: key file 'k': "), std::string::npos) << message;
    EXPECT_NE(message.find(c.says), std::string::npos) << message;
  }
}

TEST(SupportKeyFile, HostileSecretKeysAreRefusedWithTheProblem) {
  const kiln::support::Ed25519KeyPair pair = kiln::support::ed25519_generate_key_pair();
  std::string hex = kiln::support::hex_bytes(pair.secret_key);
  EXPECT_EQ(problem_of(parse_secret_key, "kiln-ed25519-public " + kPublicHex).first,
            KeyFileProblem::wrong_kind);
  EXPECT_EQ(problem_of(parse_secret_key, "kiln-ed25519-secret " + kPublicHex).first,
            KeyFileProblem::wrong_length);
  // The public half of another key: signatures would not verify with either.
  const kiln::support::Ed25519KeyPair other = kiln::support::ed25519_generate_key_pair();
  const std::string mixed = hex.substr(0, 64) + kiln::support::hex_bytes(other.public_key);
  const auto [problem, message] = problem_of(parse_secret_key, "kiln-ed25519-secret " + mixed);
  EXPECT_EQ(problem, KeyFileProblem::mismatched_halves);
  EXPECT_NE(message.find("halves that do not match"), std::string::npos) << message;
}

TEST(SupportKeyFile, KeyPairFilesAreWrittenOnceAndTheSecretIsPrivate) {
  const fs::path dir = kiln_test::fresh_dir("support_key_file/pair");
  const kiln::support::Ed25519KeyPair pair = kiln::support::ed25519_generate_key_pair();
  const auto files = kiln::support::write_key_pair_files(dir / "signer", pair, "ci");
  EXPECT_EQ(files.public_file, dir / "signer.pub");
  EXPECT_EQ(files.secret_file, dir / "signer.key");
  struct stat st {};
  ASSERT_EQ(::stat(files.secret_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(kiln::support::read_public_key_file(files.public_file).key, pair.public_key);
  EXPECT_EQ(kiln::support::read_secret_key_file(files.secret_file).key, pair.secret_key);

  // Never overwritten: a second pair under the same name fails and leaves
  // the first pair as it was.
  const std::string before = kiln_test::slurp(files.secret_file);
  const kiln::support::Ed25519KeyPair second = kiln::support::ed25519_generate_key_pair();
  EXPECT_THROW(kiln::support::write_key_pair_files(dir / "signer", second, ""),
               kiln::support::FileError);
  EXPECT_EQ(kiln_test::slurp(files.secret_file), before);
  EXPECT_EQ(kiln::support::read_public_key_file(files.public_file).key, pair.public_key);

  // A .key already there (no .pub): refused, and the .pub written first is removed.
  ASSERT_TRUE(kiln::support::create_file_atomic(dir / "lonely.key", "x",
                                                kiln::support::FileMode::owner_only));
  EXPECT_THROW(kiln::support::write_key_pair_files(dir / "lonely", second, ""),
               kiln::support::FileError);
  EXPECT_FALSE(fs::exists(dir / "lonely.pub"));
}

TEST(SupportKeyFile, UnreadableAndOversizedFilesAreRefused) {
  const fs::path dir = kiln_test::fresh_dir("support_key_file/files");
  try {
    kiln::support::read_public_key_file(dir / "missing.pub");
    ADD_FAILURE() << "read a missing file";
  } catch (const KeyFileError& e) {
    EXPECT_EQ(e.problem(), KeyFileProblem::unreadable);
    EXPECT_NE(std::string(e.what()).find("missing.pub"), std::string::npos) << e.what();
  }
  kiln::support::write_file_atomic(dir / "big.pub", std::string(5000, 'k'));
  try {
    kiln::support::read_public_key_file(dir / "big.pub");
    ADD_FAILURE() << "read a 5000-byte key file";
  } catch (const KeyFileError& e) {
    EXPECT_EQ(e.problem(), KeyFileProblem::unreadable);
    EXPECT_NE(std::string(e.what()).find("expected at most 4096 bytes"), std::string::npos)
        << e.what();
  }
}

}  // namespace
