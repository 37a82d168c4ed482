// Profile recording (KILN_PROFILE_OUT, OpenOptions::profile_out) and the
// .kprof format it writes: what a call records, how writes merge, that a
// rewrite is atomic, and the parser's errors.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "kiln/profile_format.h"
#include "kiln/runtime.h"
#include "test_support/cpu_test_package.h"
#include "test_support/scratch_files.h"

namespace {

namespace fs = std::filesystem;

// make_test_package()'s graph: scale_add, symbol n, structure hash
// {lo 0x1234, hi 0x5678}, written hi first.
constexpr const char* kScaleAdd = "scale_add 00000000000056780000000000001234";

const std::vector<uint8_t>& package_bytes() {
  static const std::vector<uint8_t> bytes = [] {
    kiln_test::TestGraphOptions o;
    o.n_max = 100;  // "general" covers n in [1, 100]; "n=8" only 8
    return kiln_test::make_test_package({o});
  }();
  return bytes;
}

kiln::Package open_recording(const fs::path& profile) {
  return kiln::Package::open_memory(
      kiln_test::as_bytes(package_bytes()),
      {.stance = kiln::Stance::fail_on_recompile, .num_threads = 1, .profile_out = profile});
}

// scale_add with x: [x_rows, 64], y: [y_rows, 64].
void call_rows(kiln::Package& p, int64_t x_rows, int64_t y_rows = -1) {
  if (y_rows < 0) y_rows = x_rows;
  std::vector<float> x(static_cast<size_t>(x_rows) * 64, 1.5f), w(64, 2.0f),
      y(static_cast<size_t>(y_rows) * 64);
  p.graph("scale_add")
      .call({kiln::TensorView(x.data(), kiln::DType::f32, {x_rows, 64}),
             kiln::TensorView(w.data(), kiln::DType::f32, {64})},
            {kiln::TensorView(y.data(), kiln::DType::f32, {y_rows, 64})});
}

std::string profile_text(std::initializer_list<std::pair<int64_t, uint64_t>> n_counts) {
  std::string text = "kiln-profile 1\n";
  for (const auto& [n, count] : n_counts) {
    text += std::string(kScaleAdd) + " n=" + std::to_string(n) + " " + std::to_string(count) + "\n";
  }
  return text;
}

// --- the format ---------------------------------------------------------------

TEST(ProfileFormat, ParseCanonicalizesAndSumsRepeatedLines) {
  const std::string text =
      "kiln-profile 1\r\n"
      "# recorded by hand\n"
      "\n"
      "g 000000000000000a000000000000000b  m=064 n=2   3\n"
      "g 000000000000000a000000000000000b n=2 m=64 4\n"
      "f 000000000000000a000000000000000b 1\n";
  const kiln::profile::Profile p = kiln::profile::parse(text, "hand.kprof");
  ASSERT_EQ(p.lines().size(), 2u);
  EXPECT_EQ(p.lines()[1].key, "g 000000000000000a000000000000000b m=64 n=2");
  EXPECT_EQ(p.lines()[1].count, 7u);
  EXPECT_EQ(p.lines()[1].line, 4u);  // the first line that named it
  EXPECT_EQ(kiln::profile::serialize(p),
            "kiln-profile 1\n"
            "f 000000000000000a000000000000000b 1\n"
            "g 000000000000000a000000000000000b m=64 n=2 7\n");
  const kiln::profile::Entry e = kiln::profile::decode(p.lines()[1]);
  EXPECT_EQ(e.graph, "g");
  EXPECT_EQ(e.structure, (kiln::profile::StructureHash{0xa, 0xb}));
  EXPECT_EQ(e.values, (std::vector<std::pair<std::string, int64_t>>{{"m", 64}, {"n", 2}}));
  EXPECT_EQ(e.count, 7u);
  // No bytes: an empty profile, so a build can name one before any run.
  EXPECT_TRUE(kiln::profile::parse("", "empty.kprof").empty());
}

TEST(ProfileFormat, MergeAddsCountsAndSaturates) {
  kiln::profile::Profile a = kiln::profile::parse(profile_text({{1, 2}, {3, 4}}), "a");
  a.merge(kiln::profile::parse(profile_text({{3, 5}, {9, UINT64_MAX}}), "b"));
  a.merge(kiln::profile::parse(profile_text({{9, 1}}), "c"));
  EXPECT_EQ(kiln::profile::serialize(a), profile_text({{1, 2}, {3, 9}, {9, UINT64_MAX}}));
}

TEST(ProfileFormat, UnsortedLinesParseInLogLinearTime) {
  // 200,000 lines, each key twice, in descending order: inserting each
  // line in place moved every line after it (quadratic: minutes); sorting
  // once takes well under a second.
  constexpr int kKeys = 100000;
  std::string text = "kiln-profile 1\n";
  for (int repeat = 0; repeat < 2; ++repeat) {
    for (int n = kKeys; n > 0; --n) {
      text += std::string(kScaleAdd) + " n=" + std::to_string(n) + " " +
              std::to_string(repeat + 1) + "\n";
    }
  }
  const auto start = std::chrono::steady_clock::now();
  const kiln::profile::Profile p = kiln::profile::parse(text, "big.kprof");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(p.lines().size(), static_cast<size_t>(kKeys));
  EXPECT_TRUE(std::is_sorted(p.lines().begin(), p.lines().end(),
                             [](const auto& a, const auto& b) { return a.key < b.key; }));
  for (const kiln::profile::Line& line : p.lines()) {
    ASSERT_EQ(line.count, 3u) << line.key;
    // The first line that named the key: its place in the first pass.
    const int64_t n = kiln::profile::decode(line).values[0].second;
    ASSERT_EQ(line.line, static_cast<size_t>(kKeys - n + 2)) << line.key;
  }
  EXPECT_LT(seconds, 10.0) << "parsing 200,000 unsorted lines took " << seconds << " s";
  // Merging two large profiles is one pass too, and sums what both hold.
  kiln::profile::Profile doubled = p;
  doubled.merge(p);
  ASSERT_EQ(doubled.lines().size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(doubled.lines().front().count, 6u);
}

TEST(ProfileFormat, MalformedFilesNameTheLineWhatWasExpectedAndWhatCame) {
  const std::string hash = "00000000000056780000000000001234";
  struct Case {
    std::string text;
    size_t line;
    std::string expected;  // a part of it
    std::string got;
  };
  const std::vector<Case> cases = {
      {"kiln-profil 1\n", 1, "'kiln-profile 1'", "'kiln-profil 1'"},
      {"kiln-profile 2\n", 1, "a newer Kiln may have written this profile", "'kiln-profile 2'"},
      {"\nkiln-profile 1\n", 1, "'kiln-profile 1'", "''"},
      {"kiln-profile 1\n# ok\ng 12ab n=1 5\n", 3, "structure hash of 32 lowercase hex digits",
       "'12ab'"},
      {"kiln-profile 1\ng " + hash + "\n", 2, "'<graph> <structure hash>", "'g " + hash + "'"},
      {"kiln-profile 1\n9g " + hash + " 1\n", 2, "a graph name", "'9g'"},
      {"kiln-profile 1\ng " + hash + " n8 2\n", 2, "'<symbol>=<value>'", "'n8'"},
      {"kiln-profile 1\ng " + hash + " n=-1 2\n", 2,
       "a size (0 to 9223372036854775807) for "
       "symbol 'n'",
       "'-1'"},
      {"kiln-profile 1\ng " + hash + " n=1 n=2 3\n", 2, "each symbol once", "'n' twice"},
      {"kiln-profile 1\ng " + hash + " n=1 0\n", 2, "a call count", "'0'"},
      {"kiln-profile 1\ng " + hash + " n=1\n", 2, "a call count", "'n=1'"},
      {"kiln-profile 1\ng " + hash + " n=1 18446744073709551616\n", 2, "a call count",
       "'18446744073709551616'"},
      // Cut mid-line: "12" may have been "1234".
      {"kiln-profile 1\ng " + hash + " n=1 12", 2, "a line ended by a newline",
       "'g " + hash + " n=1 12'"},
  };
  for (const Case& c : cases) {
    try {
      kiln::profile::parse(c.text, "bad.kprof");
      ADD_FAILURE() << "no error for:\n" << c.text;
    } catch (const kiln::profile::FormatError& e) {
      EXPECT_EQ(e.source(), "bad.kprof");
      EXPECT_EQ(e.line(), c.line) << e.what();
      EXPECT_NE(e.expected().find(c.expected), std::string::npos) << e.what();
      EXPECT_EQ(e.got(), c.got) << e.what();
      EXPECT_EQ(std::string(e.what()), "kiln: bad.kprof:" + std::to_string(c.line) + ": expected " +
                                           e.expected() + ", got " + c.got);
    }
  }
}

// --- recording ----------------------------------------------------------------

TEST(ProfileRecording, CountsEveryValidCallHitOrMissAndNoOther) {
  const fs::path file = kiln_test::fresh_dir("profile/counts") / "p.kprof";
  kiln::Package p = open_recording(file);
  p.write_profile();  // nothing recorded: the file is not created
  EXPECT_FALSE(fs::exists(file));
  for (int i = 0; i < 3; ++i) call_rows(p, 8);  // the static specialization
  for (int i = 0; i < 2; ++i) call_rows(p, 5);  // the general one
  // A miss (n outside [1, 100]) is still a call, with the shape it asked for.
  EXPECT_THROW(call_rows(p, 200), kiln::RecompileError);
  // A miss whose shapes contradict the signature (n = 4 and n = 5) binds no
  // tuple, and a refused call is no call.
  EXPECT_THROW(call_rows(p, 4, 5), kiln::RecompileError);
  std::vector<float> w(64);
  EXPECT_THROW(p.graph("scale_add")
                   .call({kiln::TensorView(nullptr, kiln::DType::f32, {3, 64}),
                          kiln::TensorView(w.data(), kiln::DType::f32, {64})},
                         {kiln::TensorView(nullptr, kiln::DType::f32, {3, 64})}),
               kiln::Error);
  EXPECT_EQ(p.graph("scale_add").counters().calls, 7u);
  p.write_profile();
  EXPECT_EQ(kiln_test::slurp(file), profile_text({{200, 1}, {5, 2}, {8, 3}}));  // by key text
  // Counting starts afresh after a write; the next one adds to the file.
  call_rows(p, 5);
  p.write_profile();
  EXPECT_EQ(kiln_test::slurp(file), profile_text({{200, 1}, {5, 3}, {8, 3}}));
}

TEST(ProfileRecording, WritesMergeWithTheFileAndReplaceItAtomically) {
  const fs::path dir = kiln_test::fresh_dir("profile/merge");
  const fs::path file = dir / "p.kprof";
  // Another process's graph and a hand-written comment are already there.
  std::ofstream(file) << "kiln-profile 1\n# by hand\nother 0000000000000000000000000000000f 5\n";
  {
    kiln::Package a = open_recording(file);
    call_rows(a, 8);
    call_rows(a, 8);
  }  // the destructor writes
  const std::string after_first = kiln_test::slurp(file);
  EXPECT_EQ(after_first, "kiln-profile 1\nother 0000000000000000000000000000000f 5\n" +
                             profile_text({{8, 2}}).substr(15));
  // A reader holding the file open keeps the bytes it opened: the profile is
  // replaced by a rename, never rewritten in place.
  std::ifstream reader(file, std::ios::binary);
  {
    kiln::Package b = open_recording(file);
    call_rows(b, 8);
    call_rows(b, 3);
  }
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(reader), {}), after_first);
  EXPECT_EQ(kiln_test::slurp(file), "kiln-profile 1\nother 0000000000000000000000000000000f 5\n" +
                                        profile_text({{3, 1}, {8, 3}}).substr(15));
  // No temp file is left behind; the lock file stays (it is never replaced).
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"p.kprof", "p.kprof.lock"}));
}

TEST(ProfileRecording, AMalformedFileIsLeftAloneAndTheCountsAreKept) {
  const fs::path file = kiln_test::fresh_dir("profile/malformed") / "p.kprof";
  const std::string garbage = "kiln-profile 1\nscale_add nothex 3\n";
  std::ofstream(file) << garbage;
  kiln::Package p = open_recording(file);
  call_rows(p, 8);
  try {
    p.write_profile();
    FAIL() << "no error";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::profile_malformed);
    EXPECT_NE(std::string(e.what()).find(file.string() + ":2: expected a structure hash"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(kiln_test::slurp(file), garbage);
  fs::remove(file);
  call_rows(p, 8);
  p.write_profile();
  EXPECT_EQ(kiln_test::slurp(file), profile_text({{8, 2}}));
}

TEST(ProfileRecording, AFailedWriteInTheDestructorIsReportedOnStderr) {
  const fs::path file = kiln_test::fresh_dir("profile/unwritable") / "no_such_dir" / "p.kprof";
  testing::internal::CaptureStderr();
  {
    kiln::Package p = open_recording(file);
    call_rows(p, 8);
  }
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("kiln: cannot write profile '" + file.string() + "': open"), std::string::npos)
      << err;
  EXPECT_NE(err.find("(recorded profile lost)"), std::string::npos) << err;
  // write_profile() throws instead, and keeps the counts.
  kiln::Package p = open_recording(file);
  call_rows(p, 8);
  try {
    p.write_profile();
    FAIL() << "no error";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::io);
  }
  fs::create_directories(file.parent_path());
  p.write_profile();
  EXPECT_EQ(kiln_test::slurp(file), profile_text({{8, 1}}));
}

TEST(ProfileRecording, KilnProfileOutOverridesTheOptionAndIsReadAtOpen) {
  const fs::path dir = kiln_test::fresh_dir("profile/env");
  std::optional<kiln::Package> p;
  {
    kiln_test::ScopedEnv env("KILN_PROFILE_OUT", (dir / "env.kprof").c_str());
    p.emplace(open_recording(dir / "option.kprof"));
  }
  call_rows(*p, 8);  // after the variable is gone: read once, at open
  p.reset();
  EXPECT_EQ(kiln_test::slurp(dir / "env.kprof"), profile_text({{8, 1}}));
  EXPECT_FALSE(fs::exists(dir / "option.kprof"));
  {
    kiln_test::ScopedEnv empty("KILN_PROFILE_OUT", "");  // empty: the option stands
    kiln::Package q = open_recording(dir / "option.kprof");
    call_rows(q, 8);
  }
  EXPECT_EQ(kiln_test::slurp(dir / "option.kprof"), profile_text({{8, 1}}));
  // Neither: nothing is recorded (and write_profile does nothing).
  kiln::Package r = kiln::Package::open_memory(kiln_test::as_bytes(package_bytes()));
  call_rows(r, 8);
  r.write_profile();
}

TEST(ProfileRecording, ConcurrentCallsAreAllCounted) {
  const fs::path file = kiln_test::fresh_dir("profile/threads") / "p.kprof";
  {
    kiln::Package p = open_recording(file);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&p, t] {
        for (int i = 0; i < 250; ++i) call_rows(p, 1 + (i + t) % 3);
      });
    }
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(kiln_test::slurp(file), profile_text({{1, 334}, {2, 333}, {3, 333}}));
}

// Four processes write one profile at once, 25 times each: the lock file
// queues them, and no count is lost.
TEST(ProfileRecording, ConcurrentProcessesLoseNothing) {
  const fs::path file = kiln_test::fresh_dir("profile/processes") / "p.kprof";
  package_bytes();  // built here, not once per child
  std::vector<pid_t> children;
  for (int c = 0; c < 4; ++c) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int status = 0;
      try {
        kiln::Package p = open_recording(file);
        for (int i = 0; i < 25; ++i) {
          call_rows(p, 8);
          call_rows(p, 1 + c);
          p.write_profile();
        }
      } catch (...) {
        status = 1;
      }
      std::_Exit(status);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(kiln_test::slurp(file), profile_text({{1, 25}, {2, 25}, {3, 25}, {4, 25}, {8, 100}}));
}

}  // namespace
