// kiln/support/process.h and tool_version.h with real children (/bin/sh and
// small scripts in a fresh directory): output and exit status, signals, a
// program that does not exist, a timeout that kills the program and what it
// started, and a failed waitpid reported rather than read as status 0.
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "kiln/support/process.h"
#include "kiln/support/tool_version.h"

namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kiln::support::describe_exit;
using kiln::support::ProcessError;
using kiln::support::ProcessResult;
using kiln::support::run_process;
using kiln::support::tool_version;
using kiln::support::ToolVersionError;
using kiln::support::VersionLine;

ProcessResult shell(const std::string& script, std::chrono::milliseconds timeout = 0ms) {
  return run_process({"/bin/sh", "-c", script}, {.timeout = timeout});
}

fs::path script(const std::string& name, const std::string& body) {
  const fs::path dir = fs::path(KILN_TEST_BINARY_DIR) / "support_process";
  fs::create_directories(dir);
  fs::path path = dir / name;
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

TEST(SupportProcess, CapturesStdoutAndStderrAndTheExitStatus) {
  const ProcessResult r = shell("echo out; echo err >&2; exit 3");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.output, "out\nerr\n");
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(describe_exit(r.exit_code), "exited with status 3");
}

TEST(SupportProcess, ArgumentsArePassedVerbatimNotThroughAShell) {
  const ProcessResult r =
      run_process({"/bin/sh", "-c", "printf '%s|' \"$@\"", "sh", "a b", "$HOME", "*"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "a b|$HOME|*|");
}

TEST(SupportProcess, ABareNameIsSearchedInPath) {
  EXPECT_EQ(run_process({"sh", "-c", "exit 0"}).exit_code, 0);
}

TEST(SupportProcess, StdinIsEmpty) {
  const ProcessResult r = shell("cat; echo done");
  EXPECT_EQ(r.output, "done\n");
}

TEST(SupportProcess, LargeOutputArrivesWhole) {
  const ProcessResult r = shell("head -c 3000000 /dev/zero");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output.size(), 3000000u);
}

TEST(SupportProcess, AKilledProgramIs128PlusTheSignal) {
  const ProcessResult r = shell("kill -9 $$");
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(describe_exit(r.exit_code), "was killed by signal 9");
}

TEST(SupportProcess, AMissingProgramIsAProcessErrorNamingIt) {
  const std::string missing = "/no/such/dir/kiln-no-such-program";
  try {
    (void)run_process({missing, "--version"});
    FAIL() << "no error";
  } catch (const ProcessError& e) {
    EXPECT_EQ(e.error_number(), ENOENT);
    EXPECT_EQ(std::string(e.what()),
              "kiln: cannot run '" + missing + "': No such file or directory");
  }
  EXPECT_THROW((void)run_process({"kiln-no-such-program-in-path"}), ProcessError);
  EXPECT_THROW((void)run_process({}), std::invalid_argument);
}

TEST(SupportProcess, TheTimeoutKillsTheProgramAndWhatItStarted) {
  const auto start = std::chrono::steady_clock::now();
  // The shell forks sleep, which holds the pipe open: only killing the
  // whole group ends the read.
  const ProcessResult r = shell("echo started; sleep 30; echo never", 300ms);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_EQ(r.output, "started\n");
  EXPECT_LT(took, 10s);
  EXPECT_GE(took, 300ms);
}

TEST(SupportProcess, AProgramThatEndsInTimeIsNotTimedOut) {
  const ProcessResult r = shell("echo quick", 30s);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "quick\n");
}

// With SIGCHLD ignored the kernel reaps the child itself and waitpid fails
// with ECHILD: its status is unknown, which must not read as status 0.
TEST(SupportProcess, AFailedWaitpidIsAProcessError) {
  struct sigaction ignore {
  }, previous{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGCHLD, &ignore, &previous), 0);
  try {
    (void)shell("exit 0");
    ADD_FAILURE() << "no error";
  } catch (const ProcessError& e) {
    EXPECT_EQ(e.error_number(), ECHILD);
    EXPECT_NE(std::string(e.what()).find("cannot wait for '/bin/sh' (pid "), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("waitpid: No child processes"), std::string::npos)
        << e.what();
  }
  ASSERT_EQ(::sigaction(SIGCHLD, &previous, nullptr), 0);
  EXPECT_EQ(shell("exit 4").exit_code, 4);
}

TEST(SupportToolVersion, FirstOrLastLineWithoutLineEnds) {
  const fs::path tool = script(
      "banner_tool", R"(printf 'Tool (R) banner\r\nCopyright\nRelease 12.4, V12.4.131\r\n\n')");
  EXPECT_EQ(tool_version(tool.string(), VersionLine::first), "Tool (R) banner");
  EXPECT_EQ(tool_version(tool.string(), VersionLine::last), "Release 12.4, V12.4.131");
  const fs::path one_line = script("one_line_tool", "echo 'clang version 16.0.6'");
  EXPECT_EQ(tool_version(one_line.string(), VersionLine::first), "clang version 16.0.6");
  EXPECT_EQ(tool_version(one_line.string(), VersionLine::last), "clang version 16.0.6");
}

TEST(SupportToolVersion, AFailingToolIsATypedErrorWithItsOutput) {
  const fs::path tool = script("failing_tool", "echo 'unknown option' >&2; exit 1");
  try {
    (void)tool_version(tool.string(), VersionLine::first);
    FAIL() << "no error";
  } catch (const ToolVersionError& e) {
    EXPECT_EQ(e.problem(),
              "'" + tool.string() + " --version' exited with status 1 (expected status 0)");
    EXPECT_EQ(std::string(e.what()), "kiln: " + e.problem());
    EXPECT_EQ(e.exit_code(), 1);
    EXPECT_EQ(e.output(), "unknown option\n");
  }
}

TEST(SupportToolVersion, AHungToolTimesOut) {
  const fs::path tool = script("hung_tool", "sleep 30");
  try {
    (void)tool_version(tool.string(), VersionLine::first, 200ms);
    FAIL() << "no error";
  } catch (const ToolVersionError& e) {
    EXPECT_NE(e.problem().find("did not finish within 200 ms"), std::string::npos) << e.what();
    EXPECT_EQ(e.exit_code(), 128 + SIGKILL);
  }
}

TEST(SupportToolVersion, AMissingToolIsAProcessError) {
  EXPECT_THROW((void)tool_version("/no/such/clang++", VersionLine::first), ProcessError);
}

}  // namespace
