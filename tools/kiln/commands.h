// The subcommands of the `kiln` CLI. Each returns the process exit code:
// 0 success, 1 a failure it reported, 2 a usage error.
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string_view>

namespace kiln::cli {

int run_inspect(const std::filesystem::path& package, bool json);
int run_verify(const std::filesystem::path& package);
// Writes `out` only when the merge succeeds.
int run_merge(const std::filesystem::path& base, std::span<const std::filesystem::path> deltas,
              const std::filesystem::path& out);
// `dir` empty: the JIT's default directory. `max_size`: prune's cap, else
// $KILN_CACHE_MAX_SIZE.
int run_cache(std::string_view action, std::filesystem::path dir,
              std::optional<std::string_view> max_size);

}  // namespace kiln::cli
