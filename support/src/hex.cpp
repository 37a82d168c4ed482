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

std::string hex_bytes(std::span<const uint8_t> bytes) {
  std::string out;
  out.reserve(2 * bytes.size());
  for (const uint8_t byte : bytes) {
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0xF];
  }
  return out;
}

bool parse_hex_bytes(std::string_view text, std::span<uint8_t> out) noexcept {
  if (text.size() != 2 * out.size()) return false;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < out.size(); ++i) {
    const int high = digit(text[2 * i]);
    const int low = digit(text[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return true;
}

}  // namespace kiln::support
