// Environment lookup. Every KILN_* (and PATH, TMPDIR, HOME, ...) read goes
// through here, so "set" means one thing across the modules: a variable set
// to the empty string counts as unset, which is what every caller did by hand.
#pragma once

#include <optional>
#include <string_view>

namespace kiln::support {

// The variable's value; nullopt when it is unset or empty. The view points
// into the environment: copy it before the environment changes (setenv,
// putenv, unsetenv of the same name).
std::optional<std::string_view> env_value(const char* name) noexcept;

}  // namespace kiln::support
