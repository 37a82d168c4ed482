#include "kiln/support/identifier.h"

namespace kiln::support {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

}  // namespace

bool is_c_identifier(std::string_view text) noexcept {
  if (text.empty() || is_digit(text.front())) return false;
  for (const char c : text) {
    if (!is_word_char(c)) return false;
  }
  return true;
}

std::string c_identifier(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 1);
  if (text.empty() || is_digit(text.front())) out += '_';
  for (const char c : text) out += is_word_char(c) ? c : '_';
  return out;
}

}  // namespace kiln::support
