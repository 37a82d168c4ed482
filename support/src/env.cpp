#include "kiln/support/env.h"

#include <cstdlib>

namespace kiln::support {

std::optional<std::string_view> env_value(const char* name) noexcept {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string_view(value);
}

}  // namespace kiln::support
