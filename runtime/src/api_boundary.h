// The runtime's API surface throws kiln::Error and nothing else: a caller
// catches one type and reads a code. What the standard library throws inside
// (std::bad_alloc for a size nobody can allocate, std::length_error, ...)
// is translated where a public function returns.
#pragma once

#include <string_view>

namespace kiln::detail {

// Rethrows the exception being handled: a kiln::Error as it is,
// std::bad_alloc as Error(resource_limit) and anything else as
// Error(internal). The message starts "kiln: WHAT 'NAME': " ("kiln: graph
// 'g': "), or "kiln: WHAT: " when `name` is empty. Out of line, so that each
// translate_exceptions() adds one catch, not one per kind (the runtime's
// size budget).
[[noreturn]] void rethrow_as_error(std::string_view what, std::string_view name);

// Runs `body`; what it throws leaves as rethrow_as_error() makes it.
template <class Body>
decltype(auto) translate_exceptions(std::string_view what, std::string_view name, Body&& body) {
  try {
    return body();
  } catch (...) {
    rethrow_as_error(what, name);
  }
}

}  // namespace kiln::detail
