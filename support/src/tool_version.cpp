#include "kiln/support/tool_version.h"

#include <utility>

namespace kiln::support {

ToolVersionError::ToolVersionError(std::string problem, int exit_code, std::string output)
    : std::runtime_error("kiln: " + problem),
      problem_(std::move(problem)),
      exit_code_(exit_code),
      output_(std::move(output)) {}

std::string tool_version(const std::string& tool, VersionLine line,
                         std::chrono::milliseconds timeout) {
  const ProcessResult r = run_process({tool, "--version"}, {.timeout = timeout});
  const std::string command = "'" + tool + " --version'";
  if (r.timed_out) {
    throw ToolVersionError(command + " did not finish within " + std::to_string(timeout.count()) +
                               " ms and was killed",
                           r.exit_code, r.output);
  }
  if (r.exit_code != 0) {
    throw ToolVersionError(command + " " + describe_exit(r.exit_code) + " (expected status 0)",
                           r.exit_code, r.output);
  }
  std::string text = r.output;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  const size_t begin = line == VersionLine::last ? text.rfind('\n') + 1 : 0;  // npos + 1 == 0
  std::string out = text.substr(begin, text.find('\n', begin) - begin);
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return out;
}

}  // namespace kiln::support
