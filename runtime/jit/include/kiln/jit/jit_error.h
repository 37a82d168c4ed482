// The JIT's typed errors: its compiler failed, or its cache directory cannot
// be trusted.
#pragma once

#include <filesystem>
#include <string>

#include "kiln/error.h"

namespace kiln::jit {

// The JIT's compiler failed: not found, exited non-zero, or was killed
// (clang++), or could not be loaded or reported an error (NVRTC). Nothing is
// cached for the call's key, so the next call tries again.
class JitCompileError : public Error {
 public:
  // `exit_code` is the compiler's status, 128 + signal when killed, -1 when
  // it could not be started; for NVRTC, which runs in process, the
  // nvrtcResult of the call that failed (6: NVRTC_ERROR_COMPILATION), -1 when
  // NVRTC could not be loaded or does not support the arch.
  JitCompileError(std::string graph, const std::string& message, int exit_code,
                  std::string compiler_output);
  const std::string& graph() const noexcept { return graph_; }
  int exit_code() const noexcept { return exit_code_; }
  const std::string& compiler_output() const noexcept { return compiler_output_; }

 private:
  std::string graph_;
  int exit_code_;
  std::string compiler_output_;
};

// The JIT's cache directory (or a file of it Kiln relies on) cannot be
// trusted to hold only code this user's own Kiln wrote: code
// ErrorCode::cache_untrusted; what() names the path and what was found
// (owner, mode, link), and what to do about it. Thrown when a FallbackJit
// with a disk cache is made, and by `kiln cache prune|clear` for a
// directory that is not Kiln's.
class CacheDirError : public Error {
 public:
  CacheDirError(std::filesystem::path path, const std::string& message);
  // The directory, symlink or file that failed the check.
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace kiln::jit
