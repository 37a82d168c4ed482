#include "stance_env.h"

#include <cstdlib>
#include <string>

namespace kiln::detail {

std::string_view stance_name(Stance stance) noexcept {
  return stance == Stance::fail_on_recompile ? "fail_on_recompile" : "fallback";
}

Stance stance_from_env(Stance requested) {
  const char* value = std::getenv("KILN_STANCE");
  if (value == nullptr || *value == '\0') return requested;
  const std::string_view v(value);
  if (v == "fallback") return Stance::fallback;
  if (v == "fail_on_recompile") return Stance::fail_on_recompile;
  throw Error(ErrorCode::invalid_argument,
              "kiln: KILN_STANCE: expected 'fallback' or 'fail_on_recompile', got '" +
                  std::string(v) + "'");
}

}  // namespace kiln::detail
