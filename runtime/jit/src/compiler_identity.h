// The compiler's identity for cache keys: the first line of `cxx --version`.
// Running it costs a process start (about 25 ms here), more than loading a
// cached entry, so as ccache does it is remembered by the compiler binary's
// resolved path, size and mtime: in memory for the process, and in
// <cache dir>/compilers/ for later processes. Replacing the compiler changes
// its size or mtime, and --version runs again.
#pragma once

#include <filesystem>
#include <string>

namespace kiln::jit::detail {

// `memo_dir` empty: no disk memo. Throws JitCompileError (naming `graph`)
// when the compiler cannot run or fails.
std::string compiler_identity(const std::string& cxx, const std::filesystem::path& memo_dir,
                              const std::string& graph);

}  // namespace kiln::jit::detail
