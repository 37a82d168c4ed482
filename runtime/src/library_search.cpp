#include "library_search.h"

#include <dlfcn.h>

#include <algorithm>
#include <optional>
#include <string_view>

#include "kiln/support/env.h"

namespace kiln::detail {

std::vector<std::string> cuda_library_candidates(const char* override_env,
                                                 std::span<const char* const> names,
                                                 std::span<const char* const> subdirs) {
  if (const std::optional<std::string_view> path = support::env_value(override_env)) {
    return {std::string(*path)};
  }
  std::vector<std::string> roots;
  if (const std::optional<std::string_view> home = support::env_value("CUDA_HOME")) {
    std::string root(*home);
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    roots.push_back(std::move(root));
  }
  roots.emplace_back("/usr/local/cuda");
  std::vector<std::string> out(names.begin(), names.end());
  for (const std::string& root : roots) {
    for (const char* subdir : subdirs) {
      for (const char* name : names) {
        std::string path = root + "/" + subdir + "/" + name;
        if (std::find(out.begin(), out.end(), path) == out.end()) out.push_back(std::move(path));
      }
    }
  }
  return out;
}

OpenedLibrary dlopen_first(const std::vector<std::string>& candidates) {
  OpenedLibrary opened;
  for (const std::string& candidate : candidates) {
    dlerror();
    opened.handle = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (opened.handle != nullptr) {
      opened.path = candidate;
      return opened;
    }
    const char* why = dlerror();
    const std::string reason = why != nullptr ? why : "dlopen failed";
    opened.failures.push_back(reason.find(candidate) == std::string::npos
                                  ? std::string(candidate).append(": ").append(reason)
                                  : reason);
  }
  return opened;
}

void* find_symbol(void* handle, const char* symbol, std::string& reason) {
  dlerror();
  void* address = ::dlsym(handle, symbol);
  if (address == nullptr) {
    const char* why = dlerror();
    // No reason: the symbol is exported with a null address, of no use as an entry point.
    reason = why != nullptr ? why : std::string(symbol) + " has a null address";
  }
  return address;
}

}  // namespace kiln::detail
