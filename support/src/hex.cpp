#include "kiln/support/hex.h"

namespace kiln::support {
namespace {

constexpr char kDigits[] = "0123456789abcdef";

}  // namespace

void append_hex16(std::string& out, uint64_t value) {
  for (int shift = 60; shift >= 0; shift -= 4) out += kDigits[(value >> shift) & 0xF];
}

std::string hex128(uint64_t hi, uint64_t lo) {
  std::string out;
  out.reserve(32);
  append_hex16(out, hi);
  append_hex16(out, lo);
  return out;
}

std::string hex_literal(uint64_t value) {
  std::string out = "0x";
  int shift = 60;
  while (shift > 0 && ((value >> shift) & 0xF) == 0) shift -= 4;
  for (; shift >= 0; shift -= 4) out += kDigits[(value >> shift) & 0xF];
  return out;
}

bool is_lower_hex(std::string_view text) noexcept {
  return !text.empty() && text.find_first_not_of(kDigits) == std::string_view::npos;
}

}  // namespace kiln::support
