#include "stance_env.h"

#include <string>

#include "kiln/support/env.h"

namespace kiln::detail {

std::string_view stance_name(Stance stance) noexcept {
  return stance == Stance::fail_on_recompile ? "fail_on_recompile" : "fallback";
}

Stance stance_from_env(Stance requested) {
  const std::optional<std::string_view> value = support::env_value("KILN_STANCE");
  if (!value) return requested;
  const std::string_view v = *value;
  if (v == "fallback") return Stance::fallback;
  if (v == "fail_on_recompile") return Stance::fail_on_recompile;
  throw Error(ErrorCode::invalid_argument,
              "kiln: KILN_STANCE: expected 'fallback' or 'fail_on_recompile', got '" +
                  std::string(v) + "'");
}

}  // namespace kiln::detail
