// kiln/support/file_io.h on real files in a fresh directory: atomic
// replacement (no temp file left, exclusive temp names, typed errors naming
// the path and errno), write-if-changed keeping the mtime, and reads bounded
// by the caller's limit.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/support/file_io.h"
#include "test_support/scratch_files.h"

namespace {
namespace fs = std::filesystem;
using kiln::support::create_file_atomic;
using kiln::support::Durability;
using kiln::support::FileError;
using kiln::support::FileMode;
using kiln::support::read_file;
using kiln::support::read_file_if_readable;
using kiln::support::write_file_atomic;
using kiln::support::write_file_if_changed;

fs::path fresh_dir(const std::string& name) {
  return kiln_test::fresh_dir("support_file_io/" + name);
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

void write_plain(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(SupportFileIo, WriteCreatesAndReplacesLeavingNoTempFile) {
  const fs::path dir = fresh_dir("replace");
  const fs::path file = dir / "f.bin";
  write_file_atomic(file, std::string("one\0two", 7));
  EXPECT_EQ(read_file(file, 100), std::string("one\0two", 7));
  write_file_atomic(file, "three", Durability::unsynced);
  EXPECT_EQ(read_file(file, 100), "three");
  write_file_atomic(file, "");
  EXPECT_EQ(read_file(file, 100), "");
  EXPECT_EQ(names_in(dir), std::vector<std::string>{"f.bin"});
}

TEST(SupportFileIo, LargeWriteArrivesWhole) {
  const fs::path file = fresh_dir("large") / "big";
  std::string bytes(3 << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 + i / 7);
  write_file_atomic(file, bytes);
  EXPECT_EQ(read_file(file, bytes.size()), bytes);
}

TEST(SupportFileIo, ConcurrentWritersNeverShareATempFile) {
  const fs::path dir = fresh_dir("concurrent");
  const fs::path file = dir / "shared";
  std::vector<std::thread> writers;
  writers.reserve(8);
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      const std::string mine(1000 + t, static_cast<char>('a' + t));
      for (int i = 0; i < 20; ++i) write_file_atomic(file, mine, Durability::unsynced);
    });
  }
  for (auto& w : writers) w.join();
  // Whole, one writer's bytes: never a mix of two.
  const std::string got = read_file(file, 1 << 20).value();
  ASSERT_GE(got.size(), 1000u);
  EXPECT_EQ(got, std::string(got.size(), got[0]));
  EXPECT_EQ(names_in(dir), std::vector<std::string>{"shared"});
}

fs::perms permissions_of(const fs::path& p) {
  return fs::symlink_status(p).permissions() & fs::perms::mask;
}

// A symlink planted under each temp name this process will try first: the
// write skips them (never writing through one) and lands whole; the file
// the links point at is untouched.
TEST(SupportFileIo, PlantedSymlinksAtTheTempNamesAreSkippedNeverWrittenThrough) {
  const fs::path dir = fresh_dir("planted");
  const fs::path victim = dir / "victim";
  write_plain(victim, "not yours");
  const fs::path file = dir / "f";
  for (int n = 0; n < 40; ++n) {
    fs::create_symlink(victim,
                       dir / ("f.tmp." + std::to_string(::getpid()) + "." + std::to_string(n)));
  }
  write_file_atomic(file, "mine");
  EXPECT_EQ(read_file(file, 100), "mine");
  EXPECT_EQ(read_file(victim, 100), "not yours");
  EXPECT_TRUE(create_file_atomic(dir / "g", "also mine"));
  EXPECT_EQ(read_file(dir / "g", 100), "also mine");
  EXPECT_EQ(read_file(victim, 100), "not yours");
}

TEST(SupportFileIo, OwnerOnlyFilesAreCreated0600) {
  const fs::path dir = fresh_dir("modes");
  write_file_atomic(dir / "private", "x", Durability::unsynced, FileMode::owner_only);
  EXPECT_EQ(permissions_of(dir / "private"), fs::perms::owner_read | fs::perms::owner_write);
  ASSERT_TRUE(create_file_atomic(dir / "key", "k", FileMode::owner_only));
  EXPECT_EQ(permissions_of(dir / "key"), fs::perms::owner_read | fs::perms::owner_write);
  write_file_atomic(dir / "shared", "x");
  EXPECT_EQ(permissions_of(dir / "shared") & fs::perms::others_read, fs::perms::others_read);
}

// create_file_atomic never replaces: not a file, not a symlink (the file it
// points at stays as it was), and of threads racing to create one path
// exactly one wins, the others finding its bytes whole.
TEST(SupportFileIo, CreateNeverReplacesAndOneOfManyRacersWins) {
  const fs::path dir = fresh_dir("create");
  EXPECT_TRUE(create_file_atomic(dir / "once", "first"));
  EXPECT_FALSE(create_file_atomic(dir / "once", "second"));
  EXPECT_EQ(read_file(dir / "once", 100), "first");
  write_plain(dir / "victim", "not yours");
  fs::create_symlink(dir / "victim", dir / "link");
  EXPECT_FALSE(create_file_atomic(dir / "link", "through the link"));
  EXPECT_EQ(read_file(dir / "victim", 100), "not yours");

  std::vector<std::thread> racers;
  std::vector<int> won(8, 0);
  for (int t = 0; t < 8; ++t) {
    racers.emplace_back([&, t] {
      won[static_cast<size_t>(t)] =
          create_file_atomic(dir / "raced", std::string(100 + t, static_cast<char>('a' + t))) ? 1
                                                                                              : 0;
    });
  }
  for (auto& r : racers) r.join();
  ASSERT_EQ(std::count(won.begin(), won.end(), 1), 1);
  const size_t winner = static_cast<size_t>(std::find(won.begin(), won.end(), 1) - won.begin());
  EXPECT_EQ(read_file(dir / "raced", 1000),
            std::string(100 + winner, static_cast<char>('a' + winner)));
  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"link", "once", "raced", "victim"}));
}

TEST(SupportFileIo, WriteIntoAMissingDirectoryNamesThePathAndErrno) {
  const fs::path file = fresh_dir("missing") / "no_such_dir" / "f";
  try {
    write_file_atomic(file, "x");
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_EQ(e.path(), file);
    EXPECT_EQ(e.error_number(), ENOENT);
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("kiln: cannot write '" + file.string() + "': create '", 0), 0u) << what;
    EXPECT_NE(what.find("No such file or directory"), std::string::npos) << what;
    EXPECT_EQ(what, "kiln: cannot write '" + file.string() + "': " + e.reason());
  }
}

TEST(SupportFileIo, FailedRenameRemovesTheTempFile) {
  const fs::path dir = fresh_dir("rename");
  const fs::path target = dir / "a_directory";
  fs::create_directories(target / "not_empty");
  try {
    write_file_atomic(target, "x");
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("rename '"), std::string::npos) << e.what();
    EXPECT_NE(e.error_number(), 0);
  }
  EXPECT_EQ(names_in(dir), std::vector<std::string>{"a_directory"});
}

TEST(SupportFileIo, WriteIfChangedLeavesAnEqualFileAlone) {
  const fs::path file = fresh_dir("if_changed") / "gen.cpp";
  EXPECT_TRUE(write_file_if_changed(file, "int x;\n"));
  // An mtime far in the past: an equal write must not move it.
  const auto old_time = fs::file_time_type::clock::now() - std::chrono::hours(24);
  fs::last_write_time(file, old_time);
  EXPECT_FALSE(write_file_if_changed(file, "int x;\n"));
  EXPECT_EQ(fs::last_write_time(file), old_time);
  // A prefix, and a longer file, are changes.
  EXPECT_TRUE(write_file_if_changed(file, "int x"));
  EXPECT_EQ(read_file(file, 100), "int x");
  EXPECT_TRUE(write_file_if_changed(file, "int x;\nint y;\n"));
  EXPECT_EQ(read_file(file, 100), "int x;\nint y;\n");
}

TEST(SupportFileIo, ReadOfAMissingFileIsNullopt) {
  const fs::path dir = fresh_dir("read_missing");
  EXPECT_EQ(read_file(dir / "none", 10), std::nullopt);
  EXPECT_EQ(read_file_if_readable(dir / "none", 10), std::nullopt);
}

TEST(SupportFileIo, ReadAtTheLimitSucceedsAndPastItIsATypedError) {
  const fs::path file = fresh_dir("limit") / "ten";
  write_plain(file, "0123456789");
  EXPECT_EQ(read_file(file, 10), "0123456789");
  try {
    (void)read_file(file, 9);
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_EQ(e.error_number(), 0);
    EXPECT_EQ(std::string(e.what()), "kiln: cannot read '" + file.string() +
                                         "': expected at most 9 bytes, the file holds 10")
        << e.what();
  }
  EXPECT_EQ(read_file_if_readable(file, 9), std::nullopt);
  EXPECT_EQ(read_file_if_readable(file, 10), "0123456789");
}

TEST(SupportFileIo, ReadOfAFileWhoseSizeIsUnknownStopsAtTheLimit) {
  // /proc files report size 0 and hold more: the limit still holds.
  ASSERT_TRUE(fs::exists("/proc/self/maps"));
  EXPECT_THROW((void)read_file("/proc/self/maps", 8), FileError);
  const std::optional<std::string> maps = read_file("/proc/self/maps", 1 << 24);
  ASSERT_TRUE(maps.has_value());
  EXPECT_GT(maps->size(), 8u);
}

TEST(SupportFileIo, ReadOfADirectoryOrUnreadableFileIsATypedError) {
  const fs::path dir = fresh_dir("unreadable");
  try {
    (void)read_file(dir, 100);
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_EQ(e.error_number(), EISDIR);
    EXPECT_EQ(std::string(e.what()).rfind("kiln: cannot read '" + dir.string() + "': ", 0), 0u);
  }
  EXPECT_EQ(read_file_if_readable(dir, 100), std::nullopt);
  const fs::path locked = dir / "locked";
  write_plain(locked, "secret");
  ASSERT_EQ(::chmod(locked.c_str(), 0), 0);
  if (::geteuid() != 0) {  // root reads it anyway
    try {
      (void)read_file(locked, 100);
      FAIL() << "no error";
    } catch (const FileError& e) {
      EXPECT_EQ(e.error_number(), EACCES);
      EXPECT_NE(std::string(e.what()).find("open '" + locked.string() + "': Permission denied"),
                std::string::npos)
          << e.what();
    }
    EXPECT_EQ(read_file_if_readable(locked, 100), std::nullopt);
  }
}

}  // namespace
