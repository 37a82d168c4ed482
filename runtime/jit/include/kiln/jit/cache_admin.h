// Looking after the JIT's on-disk cache: its size, pruning to a cap by least
// recent use, clearing. Used by `kiln cache stats|prune|clear`, and by the JIT
// itself after each store when a cap is set (JitOptions::max_size or
// $KILN_CACHE_MAX_SIZE).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::jit {

// $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else $HOME/.cache/kiln; empty
// when none is set.
std::filesystem::path default_cache_dir();

struct CacheStats {
  uint64_t entries = 0;     // <key>.kjit files
  uint64_t bytes = 0;       // their sizes, headers included
  uint64_t temp_files = 0;  // *.tmp.* left by writers that died before the rename
  // What the JITs using this directory did, summed over their processes:
  // disk_hits, compiles, compile_ns, compile_failures, corrupt_entries,
  // untrusted_entries, evictions, bypass_<reason> (the names of JitCounters); absent: zero.
  std::map<std::string, uint64_t> counters;
};

// Only files in Kiln's layout are seen (docs/jit.md); no symlink is
// followed. A directory that does not exist is an empty cache.
CacheStats cache_stats(const std::filesystem::path& dir);

// Removes entries, least recently used first (a hit refreshes an entry's
// mtime, as ccache does), until they total at most `max_bytes`; also removes
// Kiln's temp files older than an hour. Returns the number of entries
// removed. A directory without Kiln's CACHEDIR.TAG is refused
// (CacheDirError): nothing in it is touched. Only files in Kiln's layout are
// removed.
uint64_t prune_cache(const std::filesystem::path& dir, uint64_t max_bytes);

// Removes every entry, temp file, remembered compiler identity, size
// history and the counters (not the tag or the MAC key). Returns the number
// of entries removed. Refused as prune_cache is; only Kiln's files go.
uint64_t clear_cache(const std::filesystem::path& dir);

// "1048576", "500K", "64M", "2G" (powers of 1024). Throws
// Error(invalid_argument) saying what was expected and what came.
uint64_t parse_cache_size(std::string_view text);

// $KILN_CACHE_MAX_SIZE parsed; nullopt when unset or empty.
std::optional<uint64_t> cache_max_size_from_env();

}  // namespace kiln::jit
