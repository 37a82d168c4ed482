// NVRTC, opened with dlopen on first use: kiln_jit links no CUDA library, so
// an application that links it runs on machines without the CUDA toolkit,
// and compiles CUDA misses where the NVRTC runtime library (libnvrtc and
// its libnvrtc-builtins, from CUDA 12 or 13) is installed. The few types and
// values it needs are declared here as nvrtc.h has them (CUDA 13), which
// must not be included.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace kiln::jit::detail {

// Namespaced stand-ins for nvrtc.h's types, as cuda_driver.h does for the
// driver's, so kiln_jit's symbols stay apart from an application's nvrtc.h.
using nvrtcResult = int;
using nvrtcProgram = struct NvrtcProgramHandle*;

inline constexpr nvrtcResult kNvrtcSuccess = 0;  // NVRTC_SUCCESS

// NVRTC's entry points, loaded once per process. Members are named after the
// API functions (nvrtc_symbols.inc lists them).
class NvrtcLibrary {
 public:
  // Loads NVRTC and resolves every entry point, once per process (safe to
  // call from any thread). The files tried are nvrtc_candidates(), in order;
  // the first that dlopen accepts is used. A failure is remembered, not
  // retried, and thrown by this and every later call as
  // JitCompileError(graph, message naming every path tried, -1, one line per
  // path with dlopen's reason).
  static const NvrtcLibrary& get(const std::string& graph);

// NOLINTNEXTLINE(bugprone-macro-parentheses): it declares, a type cannot be parenthesized
#define KILN_DYNAMIC_SYMBOL(result, name, suffix, params) result(*name) params = nullptr;
#include "nvrtc_symbols.inc"
#undef KILN_DYNAMIC_SYMBOL

  int major = 0;  // nvrtcVersion
  int minor = 0;
  std::vector<int> archs;  // nvrtcGetSupportedArchs: 75, 80, ..., ascending
  std::string path;        // the file loaded, as the dynamic loader resolved it

  // "nvrtc 13.0": what the JIT's cache key records of the compiler. NVRTC
  // reports no patch level, so updates within 13.0 share it.
  std::string version() const;
  // "NVRTC_ERROR_COMPILATION"; "nvrtcResult 42" for a value NVRTC does not name.
  std::string result_text(nvrtcResult result) const;

 private:
  NvrtcLibrary() = default;
  // Fills problem_ and tried_ instead of throwing, so that call_once
  // completes and the failure is not retried.
  void load();

  std::string problem_;
  std::string tried_;  // one line per path tried: dlopen's reason, which names it
};

// The files NvrtcLibrary::get tries, in order, for the current environment:
// $KILN_NVRTC_PATH alone when it is set and not empty; else
// libnvrtc.so.13, libnvrtc.so.12 and libnvrtc.so by the loader's own search
// (LD_LIBRARY_PATH, the ld.so cache), then the same names under
// $CUDA_HOME/lib64 and $CUDA_HOME/targets/<arch>-linux/lib (when CUDA_HOME is
// set), /usr/local/cuda/lib64 and /usr/local/cuda/targets/<arch>-linux/lib.
std::vector<std::string> nvrtc_candidates();

// NvrtcLibrary::get(graph).version(): "nvrtc 13.0". Throws like get().
std::string nvrtc_version(const std::string& graph);

}  // namespace kiln::jit::detail
