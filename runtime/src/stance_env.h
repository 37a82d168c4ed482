// KILN_STANCE ("fallback" or "fail_on_recompile") overrides the stance a
// package is opened with, so a deployment can pin a binary without a
// rebuild; Package::set_stance still changes it afterwards.
#pragma once

#include "kiln/runtime.h"

namespace kiln::detail {

// `requested` when KILN_STANCE is unset or empty. Throws
// Error(invalid_argument) naming the accepted values for anything else.
Stance stance_from_env(Stance requested);

std::string_view stance_name(Stance stance) noexcept;

}  // namespace kiln::detail
