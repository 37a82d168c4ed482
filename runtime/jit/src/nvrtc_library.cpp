#include "nvrtc_library.h"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <string_view>

#include "kiln/jit/jit_error.h"
#include "kiln/runtime_internal/library_search.h"
#include "kiln/support/env.h"

namespace kiln::jit::detail {
namespace {

// Newest first: a CUDA 13 NVRTC compiles for every arch a CUDA 12 one does
// except those CUDA 13 dropped (below sm_75), which Kiln's kernels (bf16
// conversions need sm_80) do not target anyway.
constexpr const char* kNames[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};

#if defined(__aarch64__)
constexpr const char* kTargetLib = "targets/sbsa-linux/lib";
#else
constexpr const char* kTargetLib = "targets/x86_64-linux/lib";
#endif

constexpr const char* kSubdirs[] = {"lib64", kTargetLib};
constexpr const char* kOverride = "KILN_NVRTC_PATH";

constexpr ::kiln::detail::DynamicSymbol<NvrtcLibrary> kNvrtcSymbols[] = {
#define KILN_DYNAMIC_SYMBOL(result, name, suffix, params) \
  KILN_DYNAMIC_SYMBOL_ENTRY(NvrtcLibrary, name, suffix)
#include "nvrtc_symbols.inc"
#undef KILN_DYNAMIC_SYMBOL
};

}  // namespace

std::vector<std::string> nvrtc_candidates() {
  return ::kiln::detail::cuda_library_candidates(kOverride, kNames, kSubdirs);
}

const NvrtcLibrary& NvrtcLibrary::get(const std::string& graph) {
  // Never destroyed: kernels may compile from other threads while static
  // destructors run at exit.
  static NvrtcLibrary* const library = new NvrtcLibrary();
  static std::once_flag once;
  std::call_once(once, [] { library->load(); });
  if (!library->problem_.empty())
    throw JitCompileError(graph, library->problem_, -1, library->tried_);
  return *library;
}

void NvrtcLibrary::load() {
  const bool overridden = ::kiln::support::env_value(kOverride).has_value();
  const std::vector<std::string> candidates = nvrtc_candidates();
  // Never closed: the function pointers point into it for the process's life.
  const ::kiln::detail::OpenedLibrary opened = ::kiln::detail::dlopen_first(candidates);
  void* handle = opened.handle;
  path = opened.path;
  const std::string origin = overridden ? path + " (KILN_NVRTC_PATH)" : path;  // for messages
  for (const std::string& failure : opened.failures) tried_ += failure + '\n';
  if (handle == nullptr) {
    if (!tried_.empty()) tried_.pop_back();  // the last line's newline
    std::string list;
    for (const std::string& c : candidates) list += (list.empty() ? "" : ", ") + c;
    problem_ = overridden
                   ? "NVRTC not found: KILN_NVRTC_PATH=" + candidates[0] +
                         " is not a loadable NVRTC library (expected libnvrtc.so of CUDA 12 or 13)"
                   : "NVRTC not found (expected libnvrtc of CUDA 12 or 13; set KILN_NVRTC_PATH "
                     "to its file): tried " +
                         list;
    return;
  }
  tried_.clear();
  const std::optional<::kiln::detail::MissingSymbol> missing =
      ::kiln::detail::resolve_symbols(handle, kNvrtcSymbols, *this);
  if (missing) {
    problem_ = "NVRTC " + origin + " has no " + missing->symbol +
               " (expected an NVRTC library, 11.2 or newer; " + missing->reason + ")";
  }
  auto query = [&](const char* call, nvrtcResult r) {
    if (r != kNvrtcSuccess && problem_.empty()) {
      problem_ = "NVRTC " + origin + ": " + call + " returned " + result_text(r) +
                 " (expected NVRTC_SUCCESS)";
    }
    return r == kNvrtcSuccess;
  };
  int count = 0;
  if (!missing && query("nvrtcVersion", nvrtcVersion(&major, &minor)) &&
      query("nvrtcGetNumSupportedArchs", nvrtcGetNumSupportedArchs(&count))) {
    archs.resize(static_cast<size_t>(std::max(count, 0)));
    query("nvrtcGetSupportedArchs", nvrtcGetSupportedArchs(archs.data()));
  }
  if (!problem_.empty()) {
    // Not NVRTC, or not one Kiln can use: nothing keeps it loaded.
    ::dlclose(handle);
    return;
  }
  // The resolved file, for messages: "libnvrtc.so.13" says less than where
  // the loader found it.
  if (link_map* map = nullptr; ::dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr &&
                               map->l_name != nullptr && *map->l_name != '\0') {
    path = map->l_name;
  }
}

std::string NvrtcLibrary::version() const {
  return "nvrtc " + std::to_string(major) + "." + std::to_string(minor);
}

std::string NvrtcLibrary::result_text(nvrtcResult result) const {
  const char* text = nvrtcGetErrorString != nullptr ? nvrtcGetErrorString(result) : nullptr;
  // NVRTC answers a value it does not know with "NVRTC_ERROR unknown", not
  // null: a name is one identifier.
  if (text == nullptr || std::string_view(text).find(' ') != std::string_view::npos) {
    return "nvrtcResult " + std::to_string(result);
  }
  return text;
}

std::string nvrtc_version(const std::string& graph) { return NvrtcLibrary::get(graph).version(); }

}  // namespace kiln::jit::detail
