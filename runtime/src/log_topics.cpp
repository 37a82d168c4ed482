#include "log_topics.h"

#include "kiln/support/env.h"

namespace kiln::detail {

bool log_topic_enabled(std::string_view topic) noexcept {
  const std::optional<std::string_view> value = support::env_value("KILN_LOG");
  if (!value) return false;
  std::string_view rest = *value;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    if (rest.substr(0, comma) == topic || rest.substr(0, comma) == "all") return true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace kiln::detail
