// String building for error messages without iostreams. Every part becomes a
// TextPiece and one out-of-line function joins them, so each call site of
// cat() costs a few instructions rather than its own inlined formatter (the
// runtime is kept small: see tests/bench, runtime_size).
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace kiln::detail {

class TextPiece {
 public:
  TextPiece(std::string_view s) : view_(s) {}           // NOLINT(google-explicit-constructor)
  TextPiece(const char* s) : view_(s) {}                // NOLINT(google-explicit-constructor)
  TextPiece(const std::string& s) : view_(s) {}         // NOLINT(google-explicit-constructor)
  TextPiece(char c) : buffer_{c}, view_(buffer_, 1) {}  // NOLINT(google-explicit-constructor)
  template <std::signed_integral T>
  TextPiece(T v) {  // NOLINT(google-explicit-constructor)
    format_signed(static_cast<int64_t>(v));
  }
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool>) TextPiece(T v) {  // NOLINT(google-explicit-constructor)
    format_unsigned(static_cast<uint64_t>(v));
  }
  // The view may point into buffer_: never copied or moved.
  TextPiece(const TextPiece&) = delete;
  TextPiece& operator=(const TextPiece&) = delete;

  std::string_view view() const { return view_; }

 private:
  void format_signed(int64_t v);
  void format_unsigned(uint64_t v);

  char buffer_[24] = {};
  std::string_view view_;
};

std::string cat_pieces(std::initializer_list<std::string_view> pieces);

template <class... Parts>
std::string cat(const Parts&... parts) {
  return cat_pieces({TextPiece(parts).view()...});
}

}  // namespace kiln::detail
