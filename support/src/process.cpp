#include "kiln/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

extern char** environ;

namespace kiln::support {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& program, const std::string& what, int error_number) {
  throw ProcessError("kiln: cannot run '" + program + "': " + what + std::strerror(error_number),
                     error_number);
}

// The posix_spawn objects, destroyed on every path out.
class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
  }
  ~SpawnSetup() {
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
};

// Reads the pipe to its end, or until the deadline (then false).
bool read_output(int fd, Clock::time_point deadline, bool has_deadline, std::string& output) {
  char buffer[4096];
  for (;;) {
    if (has_deadline) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd ready{fd, POLLIN, 0};
      const int polled = ::poll(&ready, 1, static_cast<int>(std::min<int64_t>(left, INT32_MAX)));
      if (polled < 0 && errno == EINTR) continue;
      if (polled == 0) return false;
      // polled < 0 (not EINTR) falls through: read() reports the error.
    }
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      output.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      return true;
    }
  }
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty()) throw std::invalid_argument("kiln: run_process needs a program");
  const std::string& program = argv[0];
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail(program, "pipe: ", errno);

  const bool has_deadline = options.timeout.count() > 0;
  SpawnSetup setup;
  posix_spawn_file_actions_adddup2(&setup.actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&setup.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (has_deadline) {
    // A group of its own, so the timeout kills what the program started too
    // (a compiler's cc1plus, a shell's children), not only the program.
    posix_spawnattr_setflags(&setup.attributes, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&setup.attributes, 0);
  }
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  const Clock::time_point deadline = Clock::now() + options.timeout;
  pid_t pid = 0;
  const int spawned =
      posix_spawnp(&pid, args[0], &setup.actions, &setup.attributes, args.data(), environ);
  ::close(fds[1]);
  if (spawned != 0) {
    ::close(fds[0]);
    fail(program, "", spawned);
  }

  ProcessResult result;
  if (!read_output(fds[0], deadline, has_deadline, result.output)) {
    ::kill(-pid, SIGKILL);
    result.timed_out = true;
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno == EINTR) continue;
    const int error_number = errno;
    throw ProcessError("kiln: cannot wait for '" + program + "' (pid " + std::to_string(pid) +
                           "): waitpid: " + std::strerror(error_number),
                       error_number);
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

std::string describe_exit(int exit_code) {
  if (exit_code > 128) return "was killed by signal " + std::to_string(exit_code - 128);
  return "exited with status " + std::to_string(exit_code);
}

}  // namespace kiln::support
