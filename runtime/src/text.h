// String building for error messages without iostreams (kept out of the
// runtime for size).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace kiln::detail {

inline void append(std::string& out, std::string_view s) { out += s; }
inline void append(std::string& out, const char* s) { out += s; }
inline void append(std::string& out, const std::string& s) { out += s; }
inline void append(std::string& out, char c) { out += c; }
template <class T>
requires std::is_integral_v<T> &&
    (!std::is_same_v<T, char>)&&(!std::is_same_v<T, bool>)inline void append(std::string& out,
                                                                             T v) {
  out += std::to_string(v);
}

template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (append(out, parts), ...);
  return out;
}

std::string hex(uint64_t value);

}  // namespace kiln::detail
