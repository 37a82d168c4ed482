// The subcommands of the `kiln` CLI. Each returns the process exit code:
// 0 success, 1 a failure it reported, 2 a usage error.
#pragma once

#include <filesystem>

namespace kiln::cli {

int run_inspect(const std::filesystem::path& package, bool json);
int run_verify(const std::filesystem::path& package);

}  // namespace kiln::cli
