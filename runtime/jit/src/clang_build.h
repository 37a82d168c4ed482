// Compiles generated CPU kernels to one shared object with clang++, run as a
// subprocess with an argv (never a shell), in a private scratch directory.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "kiln/compiler/cpu_codegen.h"

namespace kiln::jit::detail {

// The first line of `cxx --version`: part of every cache key, so a new
// compiler never reuses an old one's objects. Throws JitCompileError when
// the compiler cannot run or fails.
std::string clang_identity(const std::string& cxx, const std::string& graph);

// A scratch directory untouched this long, whose process is gone, is left by
// a JIT killed mid-compile (no compile writes nothing for an hour).
inline constexpr std::chrono::seconds kScratchDirMaxAge = std::chrono::hours(1);

// Removes the scratch directories ("kiln-jit-<pid>-XXXXXX" in the temp
// directory, $TMPDIR else /tmp) that JITs killed mid-compile left: this
// user's, not symlinks, whose pid is gone (kill(pid, 0) fails with ESRCH)
// and which are older than `min_age` (a process of another pid namespace
// sharing the directory looks gone). Returns how many it removed. Run when
// a JIT opens its disk cache and on each prune.
size_t reclaim_scratch_dirs(std::chrono::seconds min_age = kScratchDirMaxAge);

// The shared object's bytes. Throws JitCompileError with the compiler's
// output when it fails, is killed, or cannot start; the scratch directory is
// removed either way.
std::vector<std::byte> build_shared_object(const std::string& cxx,
                                           const std::vector<std::string>& flags,
                                           const std::vector<compiler::CpuKernel>& kernels,
                                           const std::string& graph);

}  // namespace kiln::jit::detail
