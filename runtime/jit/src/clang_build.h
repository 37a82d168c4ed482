// Compiles generated CPU kernels to one shared object with clang++, run as a
// subprocess with an argv (never a shell), in a private scratch directory.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "kiln/compiler/cpu_codegen.h"

namespace kiln::jit::detail {

// The first line of `cxx --version`: part of every cache key, so a new
// compiler never reuses an old one's objects. Throws JitCompileError when
// the compiler cannot run or fails.
std::string clang_identity(const std::string& cxx, const std::string& graph);

// The shared object's bytes. Throws JitCompileError with the compiler's
// output when it fails, is killed, or cannot start; the scratch directory is
// removed either way.
std::vector<std::byte> build_shared_object(const std::string& cxx,
                                           const std::vector<std::string>& flags,
                                           const std::vector<compiler::CpuKernel>& kernels,
                                           const std::string& graph);

}  // namespace kiln::jit::detail
