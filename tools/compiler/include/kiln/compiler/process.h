// Runs a program with an argv (never through a shell) and captures its
// combined stdout and stderr.
#pragma once

#include <string>
#include <vector>

namespace kiln::compiler {

struct ProcessResult {
  int exit_code = -1;  // the exit status, or 128 + signal when killed
  std::string output;  // stdout and stderr, interleaved
};

// Throws std::runtime_error when the program cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv);

}  // namespace kiln::compiler
