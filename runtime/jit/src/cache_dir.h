// The rules a JIT cache directory must pass before the JIT runs code from
// it: it and every directory above it belong to this user (or root), none
// is writable by others (a sticky /tmp aside), and a symlink on the way was
// made by this user or root. Another user who could write any of them could
// plant code the JIT would load.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "kiln/support/crypto.h"

namespace kiln::jit::detail {

// A directory of the cache's path could not be made (read-only file
// system, no permission): nothing is wrong with what is there, so the JIT
// runs without its disk cache, as it does when a store fails.
class CacheDirUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Creates `dir` where missing (each new directory 0700), then checks it as
// above. The directory itself must be this user's; one others may write is
// refused, since they may already have planted files in it. Then it must be
// Kiln's: it holds Kiln's CACHEDIR.TAG, or it is written now into a
// directory holding nothing but Kiln's layout (empty, or an older Kiln's
// cache); a directory holding anything else (KILN_CACHE_DIR=$HOME) is
// refused. Last, one with group or other permissions but no write for them
// (an older Kiln made caches 0755) is set to 0700, with a line on stderr.
// Returns the directory with its symlinks resolved, the path every later
// access uses. Throws CacheDirError naming the path, its owner and mode,
// and what to do; CacheDirUnavailable when a directory cannot be made.
std::filesystem::path open_cache_dir(const std::filesystem::path& dir);

// mkdir(`path`, 0700): a subdirectory of a checked cache directory (a
// fan-out directory, compilers/, sizes/). Returns whether a directory is
// there now, made by this call or found.
bool make_cache_subdir(const std::filesystem::path& path) noexcept;

// Kiln's layout of a cache directory, the one place that knows it: what the
// JIT writes there, and all that pruning and clearing may remove.
//   CACHEDIR.TAG                 the marker (bford.info/cachedir), Kiln's line
//   entry-mac.key                the entries' MAC key
//   <2 hex>/<32 hex>.kjit        entries (disk_cache.h), in fan-out directories
//   compilers/<32 hex>.txt       remembered compiler identities
//   sizes/<graph>.txt            size history (size_history.h)
//   stats, stats.lock            counters (cache_stats_file.h)
//   <any of those>.tmp.<pid>.<n> write_file_atomic's temp files
inline constexpr char kCacheDirTag[] = "CACHEDIR.TAG";
inline constexpr char kMacKeyFile[] = "entry-mac.key";
inline constexpr char kCompilersDir[] = "compilers";
inline constexpr char kSizesDir[] = "sizes";
inline constexpr char kStatsFile[] = "stats";
inline constexpr char kStatsLockFile[] = "stats.lock";

// The name a temp file "<name>.tmp.<pid>.<n>" stands in for; nullopt for a
// name of another form.
std::optional<std::string_view> temp_file_base(std::string_view name);
// "3f": a fan-out directory.
bool is_fanout_name(std::string_view name);
// "<32 lowercase hex>.kjit".
bool is_entry_name(std::string_view name);
// "<32 lowercase hex>.txt": a compiler memo.
bool is_memo_name(std::string_view name);
// "<graph>.txt": a size history.
bool is_size_history_name(std::string_view name);

// Whether `dir` holds a CACHEDIR.TAG that Kiln wrote.
bool has_kiln_tag(const std::filesystem::path& dir);

// For `kiln cache prune|clear` and the JIT's pruning: false when `dir` does
// not exist (nothing to remove); CacheDirError "not a Kiln cache: <dir> has
// no CACHEDIR.TAG written by Kiln" when it lacks the tag; else true.
bool require_kiln_cache(const std::filesystem::path& dir);

// The file in a cache directory that holds its MAC key.

// The cache's MAC key (disk_cache.h), from <dir>/entry-mac.key: made on
// first use from the system's entropy, written 0600 and linked into place
// exclusively, so processes racing to make it all end up with the one that
// won. A key file that is a symlink, not this user's, readable or writable
// by others, or not exactly kMacKeyBytes long is refused, never replaced:
// CacheDirError. `dir` must have passed open_cache_dir.
support::MacKey load_cache_key(const std::filesystem::path& dir);

}  // namespace kiln::jit::detail
