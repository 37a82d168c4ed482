// The subcommands of the `kiln` CLI. Each returns the process exit code:
// 0 success, 1 a failure it reported, 2 a usage error.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

namespace kiln::cli {

int run_inspect(const std::filesystem::path& package, bool json);
int run_verify(const std::filesystem::path& package);
// `dir` empty: the JIT's default directory. `max_size`: prune's cap, else
// $KILN_CACHE_MAX_SIZE.
int run_cache(std::string_view action, std::filesystem::path dir,
              std::optional<std::string_view> max_size);

}  // namespace kiln::cli
