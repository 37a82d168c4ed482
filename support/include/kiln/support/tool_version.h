// A tool's identity: a line of `<tool> --version`. Build keys and cache keys
// hash it (the generator's clang++ and nvcc, the JIT's clang++), so a new
// compiler never reuses an old one's output.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

#include "kiln/support/process.h"  // ProcessError

namespace kiln::support {

enum class VersionLine {
  first,  // clang++: "clang version 16.0.6 (...)"
  last,   // nvcc: its first lines are a banner, the last names the release
};

// `--version` prints and exits at once; one that runs this long is hung.
inline constexpr std::chrono::seconds kToolVersionTimeout{120};

// `<tool> --version` failed, was killed or timed out.
class ToolVersionError : public std::runtime_error {
 public:
  ToolVersionError(std::string problem, int exit_code, std::string output);
  // What went wrong without the "kiln: " prefix, e.g. "'/bin/false --version'
  // exited with status 1 (expected status 0)", for callers that add their own.
  const std::string& problem() const noexcept { return problem_; }
  int exit_code() const noexcept { return exit_code_; }
  const std::string& output() const noexcept { return output_; }

 private:
  std::string problem_;
  int exit_code_;
  std::string output_;
};

// The line of the tool's output, without line ends ('\r' included). Throws
// ProcessError (process.h) when the tool cannot start, ToolVersionError when
// it does not exit with status 0 within `timeout`.
std::string tool_version(const std::string& tool, VersionLine line,
                         std::chrono::milliseconds timeout = kToolVersionTimeout);

}  // namespace kiln::support
