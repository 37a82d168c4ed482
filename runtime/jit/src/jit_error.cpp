#include "kiln/jit/jit_error.h"

namespace kiln::jit {
namespace {

std::string describe(const std::string& graph, const std::string& message,
                     const std::string& compiler_output) {
  std::string text = "kiln: graph '";
  text += graph;
  text += "': JIT compile failed: ";
  text += message;
  if (!compiler_output.empty()) {
    text += '\n';
    text += compiler_output;
  }
  return text;
}

}  // namespace

JitCompileError::JitCompileError(std::string graph, const std::string& message, int exit_code,
                                 std::string compiler_output)
    : Error(ErrorCode::jit_compile_failed, describe(graph, message, compiler_output)),
      graph_(std::move(graph)),
      exit_code_(exit_code),
      compiler_output_(std::move(compiler_output)) {}

CacheDirError::CacheDirError(std::filesystem::path path, const std::string& message)
    : Error(ErrorCode::cache_untrusted, message), path_(std::move(path)) {}

}  // namespace kiln::jit
