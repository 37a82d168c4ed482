#include "kiln/jit/jit_error.h"

namespace kiln::jit {

JitCompileError::JitCompileError(std::string graph, const std::string& message, int exit_code,
                                 std::string compiler_output)
    : Error(ErrorCode::jit_compile_failed,
            "kiln: graph '" + graph + "': JIT compile failed: " + message +
                (compiler_output.empty() ? std::string() : "\n" + compiler_output)),
      graph_(std::move(graph)),
      exit_code_(exit_code),
      compiler_output_(std::move(compiler_output)) {}

}  // namespace kiln::jit
