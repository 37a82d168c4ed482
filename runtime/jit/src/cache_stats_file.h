// Counters of a cache directory, summed over every process that used it, so
// `kiln cache stats` can say how the cache served them (as ccache keeps its
// stats files). A text file `<dir>/stats`, one `name value` per line, updated
// under an flock on `<dir>/stats.lock` and replaced atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace kiln::jit::detail {

using StatsMap = std::map<std::string, uint64_t>;

// Adds `delta` to the directory's counters. Returns false when the directory
// cannot be written (the counters are then lost; the cache still works).
bool add_to_cache_stats(const std::filesystem::path& dir, const StatsMap& delta);

// The counters; empty for a directory without a stats file. Lines that do not
// parse are skipped: a damaged stats file loses counts, never the cache.
StatsMap read_cache_stats(const std::filesystem::path& dir);

}  // namespace kiln::jit::detail
