// C identifiers: graph, symbol and tensor names, generated function and
// namespace names. ASCII only, whatever the locale (std::isalnum is not).
#pragma once

#include <string>
#include <string_view>

namespace kiln::support {

// [A-Za-z_][A-Za-z0-9_]*
bool is_c_identifier(std::string_view text) noexcept;

// `text` made an identifier: every other character becomes '_', and a '_'
// goes in front of an empty text or one that starts with a digit. An
// identifier comes back unchanged.
std::string c_identifier(std::string_view text);

}  // namespace kiln::support
