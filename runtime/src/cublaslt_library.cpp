#include "cublaslt_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <type_traits>

#include "kiln/error.h"
#include "text.h"

namespace kiln::detail {
namespace {

// Newest first; the descriptors are initialized with their size passed, so
// a CUDA 12 library reads them as well as a CUDA 13 one.
constexpr const char* kNames[] = {"libcublasLt.so.13", "libcublasLt.so.12"};

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace

std::vector<std::string> cublaslt_candidates() {
  if (std::string path = env("KILN_LIBCUBLASLT"); !path.empty()) return {std::move(path)};
  std::vector<std::string> dirs;
  if (std::string home = env("CUDA_HOME"); !home.empty()) {
    while (home.size() > 1 && home.back() == '/') home.pop_back();
    dirs.push_back(home + "/lib64");
  }
  dirs.emplace_back("/usr/local/cuda/lib64");
  std::vector<std::string> out(std::begin(kNames), std::end(kNames));
  for (const std::string& dir : dirs) {
    for (const char* name : kNames) {
      std::string path = cat(dir, "/", name);
      bool seen = false;
      for (const std::string& p : out) seen = seen || p == path;
      if (!seen) out.push_back(std::move(path));
    }
  }
  return out;
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
  const bool overridden = !env("KILN_LIBCUBLASLT").empty();
  const std::vector<std::string> candidates = cublaslt_candidates();
  void* handle = nullptr;
  std::string tried;  // one line per file: dlopen's reason, which names it
  for (const std::string& candidate : candidates) {
    dlerror();
    // Never closed: the entry points and every handle point into it.
    handle = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) {
      path = candidate;
      break;
    }
    const char* why = dlerror();
    const std::string reason = why != nullptr ? why : "dlopen failed";
    tried += "\n  ";
    if (reason.find(candidate) == std::string::npos) tried += candidate + ": ";
    tried += reason;
  }
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
  bool complete = true;
  auto resolve = [&](auto& entry, const char* symbol) {
    if (!complete) return;
    void* address = ::dlsym(handle, symbol);
    if (address == nullptr) {
      problem_ =
          cat("cuBLASLt ", path, " has no ", symbol, " (expected libcublasLt of CUDA 12 or 13)");
      complete = false;
      return;
    }
    entry = reinterpret_cast<std::remove_reference_t<decltype(entry)>>(address);
  };
  resolve(cublasLtGetVersion, "cublasLtGetVersion");
  resolve(cublasLtGetStatusName, "cublasLtGetStatusName");
  resolve(cublasLtGetStatusString, "cublasLtGetStatusString");
  resolve(cublasLtCreate, "cublasLtCreate");
  resolve(cublasLtDestroy, "cublasLtDestroy");
  resolve(cublasLtMatmulDescInit_internal, "cublasLtMatmulDescInit_internal");
  resolve(cublasLtMatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute");
  resolve(cublasLtMatrixLayoutInit_internal, "cublasLtMatrixLayoutInit_internal");
  resolve(cublasLtMatrixLayoutSetAttribute, "cublasLtMatrixLayoutSetAttribute");
  resolve(cublasLtMatmulPreferenceInit_internal, "cublasLtMatmulPreferenceInit_internal");
  resolve(cublasLtMatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute");
  resolve(cublasLtMatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic");
  resolve(cublasLtMatmul, "cublasLtMatmul");
  if (!complete) {
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
