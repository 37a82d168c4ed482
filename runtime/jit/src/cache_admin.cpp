#include "kiln/jit/cache_admin.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "cache_dir.h"
#include "cache_stats_file.h"
#include "clang_build.h"
#include "kiln/error.h"
#include "kiln/support/env.h"

namespace kiln::jit {
namespace fs = std::filesystem;
namespace {

// A writer dies between create and rename at most this long ago and is
// still writing; older temp files are garbage.
constexpr auto kTempFileMaxAge = std::chrono::hours(1);

struct Entry {
  fs::path path;
  uint64_t bytes;
  fs::file_time_type used;
};

// Kiln's files in the cache, by its layout (cache_dir.h) and nothing else:
// entries into `entries`, temp files into `temps`. Only plain files count,
// and no symlink is followed. Files that vanish meanwhile (another process
// pruning) are skipped.
struct Scan {
  std::vector<Entry> entries, temps;
  std::vector<fs::path> fanout_dirs;
};

// Adds `file` to `into` when it is a plain file still there.
void add(const fs::directory_entry& file, std::vector<Entry>& into) {
  std::error_code ec;
  if (!file.is_regular_file(ec) || file.is_symlink(ec)) return;
  const uint64_t bytes = file.file_size(ec);
  const fs::file_time_type used = file.last_write_time(ec);
  if (!ec) into.push_back({file.path(), bytes, used});
}

Scan scan(const fs::path& dir) {
  Scan out;
  std::error_code ec;
  for (auto top = fs::directory_iterator(dir, ec); !ec && top != fs::directory_iterator();
       top.increment(ec)) {
    const std::string name = top->path().filename().string();
    std::error_code type_ec;
    if (detail::is_fanout_name(name) && top->is_directory(type_ec) && !top->is_symlink(type_ec)) {
      out.fanout_dirs.push_back(top->path());
      std::error_code sub_ec;
      for (auto it = fs::directory_iterator(top->path(), sub_ec);
           !sub_ec && it != fs::directory_iterator(); it.increment(sub_ec)) {
        const std::string file = it->path().filename().string();
        const std::optional<std::string_view> base = detail::temp_file_base(file);
        if (detail::is_entry_name(file) && file.starts_with(name)) {
          add(*it, out.entries);
        } else if (base && detail::is_entry_name(*base)) {
          add(*it, out.temps);
        }
      }
    } else if (const std::optional<std::string_view> base = detail::temp_file_base(name);
               base && (*base == detail::kStatsFile || *base == detail::kMacKeyFile ||
                        *base == detail::kCacheDirTag)) {
      add(*top, out.temps);
    }
  }
  // The compiler memos' temp files (their own are cleared, not pruned).
  for (auto it = fs::directory_iterator(dir / detail::kCompilersDir, ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::optional<std::string_view> base =
        detail::temp_file_base(it->path().filename().string());
    if (base && detail::is_memo_name(*base)) add(*it, out.temps);
  }
  return out;
}

// Removes the files of `subdir` that `is_kiln_file` names, then `subdir`
// itself if that left it empty.
template <typename IsKilnFile>
void clear_subdir(const fs::path& subdir, IsKilnFile is_kiln_file) {
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (auto it = fs::directory_iterator(subdir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::optional<std::string_view> base = detail::temp_file_base(name);
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && !it->is_symlink(type_ec) &&
        (is_kiln_file(name) || (base && is_kiln_file(*base)))) {
      doomed.push_back(it->path());
    }
  }
  for (const fs::path& p : doomed) fs::remove(p, ec);
  ::rmdir(subdir.c_str());  // fails, leaving it, unless empty
}

}  // namespace

fs::path default_cache_dir() {
  if (const auto dir = support::env_value("KILN_CACHE_DIR")) return *dir;
  if (const auto xdg = support::env_value("XDG_CACHE_HOME")) return fs::path(*xdg) / "kiln";
  if (const auto home = support::env_value("HOME")) return fs::path(*home) / ".cache" / "kiln";
  return {};
}

CacheStats cache_stats(const fs::path& dir) {
  const Scan found = scan(dir);
  CacheStats s;
  s.entries = found.entries.size();
  for (const Entry& e : found.entries) s.bytes += e.bytes;
  s.temp_files = found.temps.size();
  s.counters = detail::read_cache_stats(dir);
  return s;
}

uint64_t prune_cache(const fs::path& dir, uint64_t max_bytes) {
  if (!detail::require_kiln_cache(dir)) return 0;
  detail::reclaim_scratch_dirs();
  Scan found = scan(dir);
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (const Entry& t : found.temps) {
    if (now - t.used > kTempFileMaxAge) fs::remove(t.path, ec);
  }
  uint64_t total = 0;
  for (const Entry& e : found.entries) total += e.bytes;
  std::sort(found.entries.begin(), found.entries.end(),
            [](const Entry& a, const Entry& b) { return a.used < b.used; });
  uint64_t removed = 0;
  for (const Entry& e : found.entries) {
    if (total <= max_bytes) break;
    if (fs::remove(e.path, ec)) ++removed;
    total -= e.bytes;  // gone either way: removed here or by another process
  }
  return removed;
}

uint64_t clear_cache(const fs::path& dir) {
  if (!detail::require_kiln_cache(dir)) return 0;
  const Scan found = scan(dir);
  std::error_code ec;
  uint64_t removed = 0;
  for (const Entry& e : found.entries) removed += fs::remove(e.path, ec) ? 1 : 0;
  for (const Entry& t : found.temps) fs::remove(t.path, ec);
  for (const fs::path& fanout : found.fanout_dirs) ::rmdir(fanout.c_str());
  clear_subdir(dir / detail::kCompilersDir, detail::is_memo_name);
  clear_subdir(dir / detail::kSizesDir, detail::is_size_history_name);
  for (const char* file : {detail::kStatsFile, detail::kStatsLockFile}) {
    struct stat st {};
    const fs::path p = dir / file;
    if (::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) fs::remove(p, ec);
  }
  return removed;
}

uint64_t parse_cache_size(std::string_view text) {
  auto bad = [&]() -> Error {
    return Error(ErrorCode::invalid_argument,
                 "kiln: cache size: expected a byte count with an optional K, M or G suffix "
                 "(\"500M\"), got '" +
                     std::string(text) + "'");
  };
  if (text.empty()) throw bad();
  uint64_t scale = 1;
  std::string_view digits = text;
  switch (text.back()) {
    case 'K':
    case 'k':
      scale = uint64_t{1} << 10;
      break;
    case 'M':
    case 'm':
      scale = uint64_t{1} << 20;
      break;
    case 'G':
    case 'g':
      scale = uint64_t{1} << 30;
      break;
    default:
      break;
  }
  if (scale != 1) digits.remove_suffix(1);
  if (digits.empty()) throw bad();
  uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') throw bad();
    if (__builtin_mul_overflow(value, uint64_t{10}, &value) ||
        __builtin_add_overflow(value, static_cast<uint64_t>(c - '0'), &value)) {
      throw bad();
    }
  }
  if (__builtin_mul_overflow(value, scale, &value)) throw bad();
  return value;
}

std::optional<uint64_t> cache_max_size_from_env() {
  const std::optional<std::string_view> v = support::env_value("KILN_CACHE_MAX_SIZE");
  if (!v) return std::nullopt;
  return parse_cache_size(*v);
}

}  // namespace kiln::jit
