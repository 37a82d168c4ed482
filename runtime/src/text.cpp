#include "text.h"

#include <charconv>

namespace kiln::detail {

void TextPiece::format_signed(int64_t v) {
  const auto r = std::to_chars(buffer_, buffer_ + sizeof buffer_, v);
  view_ = std::string_view(buffer_, static_cast<size_t>(r.ptr - buffer_));
}

void TextPiece::format_unsigned(uint64_t v) {
  const auto r = std::to_chars(buffer_, buffer_ + sizeof buffer_, v);
  view_ = std::string_view(buffer_, static_cast<size_t>(r.ptr - buffer_));
}

std::string cat_pieces(std::initializer_list<std::string_view> pieces) {
  size_t size = 0;
  for (std::string_view p : pieces) size += p.size();
  std::string out;
  out.reserve(size);
  for (std::string_view p : pieces) out += p;
  return out;
}

}  // namespace kiln::detail
