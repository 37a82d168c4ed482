#include "cublaslt_library.h"

#include <dlfcn.h>

#include <mutex>
#include <optional>

#include "kiln/error.h"
#include "kiln/support/env.h"
#include "library_search.h"
#include "text.h"

namespace kiln::detail {
namespace {

// Newest first; the descriptors are initialized with their size passed, so
// a CUDA 12 library reads them as well as a CUDA 13 one.
constexpr const char* kNames[] = {"libcublasLt.so.13", "libcublasLt.so.12"};

constexpr const char* kSubdirs[] = {"lib64"};
constexpr const char* kOverride = "KILN_LIBCUBLASLT";

constexpr DynamicSymbol<CublasLtLibrary> kCublasLtSymbols[] = {
#define KILN_DYNAMIC_SYMBOL(result, name, suffix, params) \
  KILN_DYNAMIC_SYMBOL_ENTRY(CublasLtLibrary, name, suffix)
#include "cublaslt_symbols.inc"
#undef KILN_DYNAMIC_SYMBOL
};

}  // namespace

std::vector<std::string> cublaslt_candidates() {
  return cuda_library_candidates(kOverride, kNames, kSubdirs);
}

const CublasLtLibrary& CublasLtLibrary::get(std::string_view graph) {
  // Never destroyed: handles of every package's devices point into it until
  // their launchers go, possibly in static destructors.
  static CublasLtLibrary* const library = new CublasLtLibrary();
  static std::once_flag once;
  std::call_once(once, [] { library->load(); });
  if (!library->problem_.empty()) {
    throw Error(ErrorCode::library_unavailable,
                cat("kiln: graph '", graph, "': ", library->problem_));
  }
  return *library;
}

void CublasLtLibrary::load() {
  const bool overridden = support::env_value(kOverride).has_value();
  // Never closed: the entry points and every handle point into it.
  const OpenedLibrary opened = dlopen_first(cublaslt_candidates());
  void* handle = opened.handle;
  path = opened.path;
  std::string tried;  // one line per file: dlopen's reason, which names it
  for (const std::string& failure : opened.failures) tried += "\n  " + failure;
  if (handle == nullptr) {
    problem_ = cat(
        "a gemm launch needs cuBLASLt, which cannot be loaded (expected libcublasLt of CUDA 12 or "
        "13",
        overridden ? std::string_view(", from KILN_LIBCUBLASLT") : std::string_view(),
        "; install the CUDA toolkit's or pip's nvidia-cublas, or set KILN_LIBCUBLASLT to the "
        "file):",
        tried);
    return;
  }
  if (const std::optional<MissingSymbol> missing =
          resolve_symbols(handle, kCublasLtSymbols, *this)) {
    problem_ = cat("cuBLASLt ", path, " has no ", missing->symbol,
                   " (expected libcublasLt of CUDA 12 or 13; ", missing->reason, ")");
    // Not cuBLASLt, or too old: nothing keeps it loaded.
    ::dlclose(handle);
    return;
  }
  version = cublasLtGetVersion();
}

std::string CublasLtLibrary::status_text(cublasStatus_t status) const {
  const char* name = cublasLtGetStatusName != nullptr ? cublasLtGetStatusName(status) : nullptr;
  const char* text = cublasLtGetStatusString != nullptr ? cublasLtGetStatusString(status) : nullptr;
  // An unknown value comes back as "<unknown>" rather than null.
  if (name == nullptr || std::string_view(name).find("CUBLAS_STATUS_") != 0) {
    return cat("cublasStatus ", status);
  }
  if (text == nullptr) return name;
  return cat(name, " (", text, ")");
}

}  // namespace kiln::detail
