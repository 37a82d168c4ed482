#include "kiln/jit/cache_admin.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "cache_stats_file.h"
#include "kiln/error.h"
#include "kiln/support/env.h"

namespace kiln::jit {
namespace fs = std::filesystem;
namespace {

// A writer dies between create and rename at most this long ago and is
// still writing; older temp files are garbage.
constexpr auto kTempFileMaxAge = std::chrono::hours(1);

bool is_entry(const fs::path& p) { return p.extension() == ".kjit"; }
bool is_temp(const fs::path& p) { return p.filename().string().find(".tmp.") != std::string::npos; }

struct Entry {
  fs::path path;
  uint64_t bytes;
  fs::file_time_type used;
};

// Every file of the cache; entries into `entries`, temp files into `temps`.
// Files that vanish meanwhile (another process pruning) are skipped.
void scan(const fs::path& dir, std::vector<Entry>* entries, std::vector<Entry>* temps) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path& p = it->path();
    std::error_code file_ec;
    if (!it->is_regular_file(file_ec)) continue;
    const uint64_t bytes = it->file_size(file_ec);
    const fs::file_time_type used = it->last_write_time(file_ec);
    if (file_ec) continue;
    if (is_temp(p)) {
      if (temps) temps->push_back({p, bytes, used});
    } else if (is_entry(p) && entries) {
      entries->push_back({p, bytes, used});
    }
  }
}

}  // namespace

fs::path default_cache_dir() {
  if (const auto dir = support::env_value("KILN_CACHE_DIR")) return *dir;
  if (const auto xdg = support::env_value("XDG_CACHE_HOME")) return fs::path(*xdg) / "kiln";
  if (const auto home = support::env_value("HOME")) return fs::path(*home) / ".cache" / "kiln";
  return {};
}

CacheStats cache_stats(const fs::path& dir) {
  std::vector<Entry> entries, temps;
  scan(dir, &entries, &temps);
  CacheStats s;
  s.entries = entries.size();
  for (const Entry& e : entries) s.bytes += e.bytes;
  s.temp_files = temps.size();
  s.counters = detail::read_cache_stats(dir);
  return s;
}

uint64_t prune_cache(const fs::path& dir, uint64_t max_bytes) {
  std::vector<Entry> entries, temps;
  scan(dir, &entries, &temps);
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (const Entry& t : temps) {
    if (now - t.used > kTempFileMaxAge) fs::remove(t.path, ec);
  }
  uint64_t total = 0;
  for (const Entry& e : entries) total += e.bytes;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.used < b.used; });
  uint64_t removed = 0;
  for (const Entry& e : entries) {
    if (total <= max_bytes) break;
    if (fs::remove(e.path, ec)) ++removed;
    total -= e.bytes;  // gone either way: removed here or by another process
  }
  return removed;
}

uint64_t clear_cache(const fs::path& dir) {
  std::vector<Entry> entries, temps;
  scan(dir, &entries, &temps);
  std::error_code ec;
  uint64_t removed = 0;
  for (const Entry& e : entries) removed += fs::remove(e.path, ec) ? 1 : 0;
  for (const Entry& t : temps) fs::remove(t.path, ec);
  fs::remove_all(dir / "compilers", ec);
  fs::remove_all(dir / "sizes", ec);
  fs::remove(dir / "stats", ec);
  fs::remove(dir / "stats.lock", ec);
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
