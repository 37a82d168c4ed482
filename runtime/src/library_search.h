// Finding and opening a CUDA library that Kiln loads with dlopen (cuBLASLt
// in the runtime, NVRTC in the JIT), so that one binary runs where the
// library is absent: the same search order and the same record of why each
// file did not open, for every such library.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace kiln::detail {

// The files to try, in order: $<override_env> alone when it is set; else
// each of `names` bare (the loader's own search), then under
// $CUDA_HOME/<subdir> and /usr/local/cuda/<subdir> for each of `subdirs`,
// without repeats (CUDA_HOME=/usr/local/cuda would list each twice).
std::vector<std::string> cuda_library_candidates(const char* override_env,
                                                 std::span<const char* const> names,
                                                 std::span<const char* const> subdirs);

struct OpenedLibrary {
  void* handle = nullptr;  // never closed: its entry points live as long as the process
  std::string path;        // the candidate that opened
  // One line per candidate that did not open: dlopen's reason, which
  // usually names the file ("<path>: cannot open shared object file: ..."),
  // else "<path>: <reason>".
  std::vector<std::string> failures;
};

// dlopen (RTLD_NOW | RTLD_LOCAL) of each candidate until one opens.
OpenedLibrary dlopen_first(const std::vector<std::string>& candidates);

}  // namespace kiln::detail
