// Runs a program with an argv (never through a shell), its stdin /dev/null,
// and captures its stdout and stderr together: compilers, ninja, the CLI in
// tests. A program that cannot be started, or whose end cannot be waited
// for, is a ProcessError; how it ended is the result's.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln::support {

struct ProcessResult {
  int exit_code = -1;      // the exit status, or 128 + signal when killed
  std::string output;      // stdout and stderr, interleaved
  bool timed_out = false;  // killed at the timeout (exit_code is then 128 + SIGKILL)
};

struct ProcessOptions {
  // Past this, the program and every process it started in its process
  // group are killed (SIGKILL). Zero: wait as long as it runs. With a
  // timeout the program runs in a process group of its own, so it no longer
  // gets the terminal's Ctrl-C; without one it stays in ours.
  std::chrono::milliseconds timeout{0};
};

class ProcessError : public std::runtime_error {
 public:
  ProcessError(const std::string& message, int error_number)
      : std::runtime_error(message), error_number_(error_number) {}
  // The errno of the failed call (posix_spawn's result, or waitpid's).
  int error_number() const noexcept { return error_number_; }

 private:
  int error_number_;
};

// Throws std::invalid_argument for an empty argv; ProcessError when the
// program cannot be started ("kiln: cannot run '<program>': <errno text>"; a
// bare name is searched in $PATH) or waitpid fails (say, SIGCHLD ignored:
// the child was reaped by no one, and its status is unknown, not 0).
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// How a program with this exit_code ended, for messages: "exited with status
// 3", or "was killed by signal 9".
std::string describe_exit(int exit_code);

}  // namespace kiln::support
