// Finding and opening a CUDA library that Kiln loads with dlopen (cuBLASLt
// in the runtime, NVRTC in the JIT), so that one binary runs where the
// library is absent: the same search order and the same record of why each
// file did not open, for every such library. And resolving the entry points
// of any library so loaded (the CUDA driver too), from a table that lists
// each one once.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace kiln::detail {

// The files to try, in order: $<override_env> alone when it is set; else
// each of `names` bare (the loader's own search), then under
// $CUDA_HOME/<subdir> and /usr/local/cuda/<subdir> for each of `subdirs`,
// without repeats (CUDA_HOME=/usr/local/cuda would list each twice).
std::vector<std::string> cuda_library_candidates(const char* override_env,
                                                 std::span<const char* const> names,
                                                 std::span<const char* const> subdirs);

struct OpenedLibrary {
  void* handle = nullptr;  // never closed: its entry points live as long as the process
  std::string path;        // the candidate that opened
  // One line per candidate that did not open: dlopen's reason, which
  // usually names the file ("<path>: cannot open shared object file: ..."),
  // else "<path>: <reason>".
  std::vector<std::string> failures;
};

// dlopen (RTLD_NOW | RTLD_LOCAL) of each candidate until one opens.
OpenedLibrary dlopen_first(const std::vector<std::string>& candidates);

// A library's entry points are listed once, in a table file (for example
// cuda_driver_symbols.inc) of lines
//
//   KILN_DYNAMIC_SYMBOL(result type, API name, symbol suffix, (parameters))
//
// where the exported symbol is the API name followed by the suffix: empty,
// or the _v2 of a name that the library's header #defines to its _v2
// symbol. The library's class includes the table to declare a function
// pointer per entry, named after the API function, with KILN_DYNAMIC_SYMBOL
// defined as `result(*name) params = nullptr;`; its source includes it
// again, with KILN_DYNAMIC_SYMBOL_ENTRY(Library, name, suffix), for the
// array resolve_symbols walks. (Each class spells that one-line declaration
// itself, as IREE's dynamic_symbols.h does: the JIT's headers are compiled
// where this one is not on the include path.)

// One entry of a library's table: the exported symbol and what stores its
// address into the matching function pointer of `Library`.
template <class Library>
struct DynamicSymbol {
  const char* symbol;
  void (*store)(Library& library, void* address);
};

// DynamicSymbol::store for the function pointer `Member` of `Library`.
template <class Library, auto Member>
void store_symbol(Library& library, void* address) {
  library.*Member = reinterpret_cast<std::remove_reference_t<decltype(library.*Member)>>(address);
}

// A function template, not a lambda, so that a table of entries is constant
// (initialized before any code runs, whichever global first opens a library).
#define KILN_DYNAMIC_SYMBOL_ENTRY(Library, name, suffix) \
  ::kiln::detail::DynamicSymbol<Library>{#name #suffix,  \
                                         &::kiln::detail::store_symbol<Library, &Library::name>},

// An entry point the library does not export.
struct MissingSymbol {
  std::string symbol;  // the exported name looked up
  std::string reason;  // dlerror's, which names the file and the symbol
};

// dlsym of `symbol` in `handle`; null, with dlerror's reason in `reason`,
// when the library does not export it.
void* find_symbol(void* handle, const char* symbol, std::string& reason);

// Looks up every entry of `symbols` in `handle`, in order, storing each
// address in `library`; stops at the first the library does not export and
// returns it (the entries before it are stored, the rest left null).
template <class Library>
std::optional<MissingSymbol> resolve_symbols(
    void* handle, std::span<const DynamicSymbol<std::type_identity_t<Library>>> symbols,
    Library& library) {
  for (const DynamicSymbol<Library>& entry : symbols) {
    std::string reason;
    void* address = find_symbol(handle, entry.symbol, reason);
    if (address == nullptr) return MissingSymbol{entry.symbol, std::move(reason)};
    entry.store(library, address);
  }
  return std::nullopt;
}

}  // namespace kiln::detail
