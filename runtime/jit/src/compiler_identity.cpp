#include "compiler_identity.h"

#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <optional>
#include <unordered_map>

#include "cache_dir.h"
#include "clang_build.h"
#include "kiln/compiler/hash.h"
#include "kiln/support/env.h"
#include "kiln/support/file_io.h"

namespace kiln::jit::detail {
namespace fs = std::filesystem;
namespace {

// A memo holds one line of `--version`: a larger file is not a memo.
constexpr uint64_t kMaxMemoBytes = 64 << 10;

// Path, size and mtime of the binary `cxx` names, hashed; nullopt when it
// cannot be found (a bare name is searched in $PATH).
std::optional<std::string> binary_fingerprint(const std::string& cxx) {
  fs::path path = cxx;
  if (cxx.find('/') == std::string::npos) {
    std::string_view rest = support::env_value("PATH").value_or("");
    path.clear();
    while (!rest.empty() && path.empty()) {
      const size_t colon = rest.find(':');
      const fs::path candidate = fs::path(rest.substr(0, colon)) / cxx;
      if (::access(candidate.c_str(), X_OK) == 0) path = candidate;
      rest.remove_prefix(colon == std::string_view::npos ? rest.size() : colon + 1);
    }
    if (path.empty()) return std::nullopt;
  }
  std::error_code ec;
  const fs::path resolved = fs::canonical(path, ec);
  struct stat st {};
  if (ec || ::stat(resolved.c_str(), &st) != 0) return std::nullopt;
  const std::string text = resolved.string() + '\n' + std::to_string(st.st_size) + '\n' +
                           std::to_string(st.st_mtim.tv_sec) + '.' +
                           std::to_string(st.st_mtim.tv_nsec);
  return compiler::hash_string(text).hex();
}

void store_memo(const fs::path& file, const std::string& identity) {
  if (!make_cache_subdir(file.parent_path())) return;
  try {
    support::write_file_atomic(file, identity, support::Durability::synced,
                               support::FileMode::owner_only);
  } catch (const std::exception&) {
    // A memo that cannot be written costs the next process one
    // `clang++ --version`; nothing more.
  }
}

}  // namespace

std::string compiler_identity(const std::string& cxx, const fs::path& memo_dir,
                              const std::string& graph) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::string> known;  // fingerprint -> identity
  const std::optional<std::string> fingerprint = binary_fingerprint(cxx);
  if (fingerprint) {
    std::lock_guard lock(mutex);
    if (auto it = known.find(*fingerprint); it != known.end()) return it->second;
  }
  const fs::path memo = fingerprint && !memo_dir.empty()
                            ? memo_dir / "compilers" / (*fingerprint + ".txt")
                            : fs::path();
  std::string identity;
  if (!memo.empty()) identity = support::read_file_if_readable(memo, kMaxMemoBytes).value_or("");
  if (identity.empty()) {
    identity = clang_identity(cxx, graph);
    if (!memo.empty()) store_memo(memo, identity);
  }
  if (fingerprint) {
    std::lock_guard lock(mutex);
    known.emplace(*fingerprint, identity);
  }
  return identity;
}

}  // namespace kiln::jit::detail
