// KILN_LOG: a comma-separated list of topics to log to stderr
// ("recompiles", "cache"). Read at each use, not cached: only slow paths
// (misses, compiles) ask, and a test or a server may change it at run time.
#pragma once

#include <string_view>

namespace kiln::detail {

bool log_topic_enabled(std::string_view topic) noexcept;

}  // namespace kiln::detail
