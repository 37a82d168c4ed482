// The runtime's API surface throws kiln::Error and nothing else: a caller
// catches one type and reads a code. What the standard library throws inside
// (std::bad_alloc for a size nobody can allocate, std::length_error, ...)
// is translated where a public function returns.
#pragma once

#include <exception>
#include <new>
#include <string_view>

#include "kiln/error.h"
#include "text.h"

namespace kiln::detail {

// Runs `body`, rethrowing a kiln::Error as it is, std::bad_alloc as
// Error(resource_limit) and any other exception as Error(internal). The
// message starts "kiln: WHAT 'NAME': " ("kiln: graph 'g': "), or "kiln:
// WHAT: " when `name` is empty; both are only read on a throw.
template <class Body>
decltype(auto) translate_exceptions(std::string_view what, std::string_view name, Body&& body) {
  try {
    return body();
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::resource_limit,
                cat("kiln: ", what, name.empty() ? "" : " '", name, name.empty() ? "" : "'",
                    ": out of memory (an allocation the input asked for failed)"));
  } catch (const std::exception& e) {
    throw Error(ErrorCode::internal, cat("kiln: ", what, name.empty() ? "" : " '", name,
                                         name.empty() ? "" : "'", ": ", e.what()));
  } catch (...) {
    throw Error(ErrorCode::internal,
                cat("kiln: ", what, name.empty() ? "" : " '", name, name.empty() ? "" : "'",
                    ": an exception that is not a kiln::Error"));
  }
}

}  // namespace kiln::detail
