#include "text.h"

namespace kiln::detail {

std::string hex(uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  bool leading = true;
  for (int shift = 60; shift >= 0; shift -= 4) {
    unsigned digit = (value >> shift) & 0xF;
    if (leading && digit == 0 && shift != 0) continue;
    leading = false;
    out += kDigits[digit];
  }
  return out;
}

}  // namespace kiln::detail
