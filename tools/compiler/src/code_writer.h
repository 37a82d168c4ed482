// Internal to the codegen: a small writer of generated source, as Halide's
// CodeGen_C and TVM's CodeGenSourceBase keep one. It holds the text, the
// indentation (two spaces a level) and the counter that keeps generated
// names unique, so an emitter says what a line is and not how far it is
// indented or where its braces close.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::compiler::codegen_detail {

// Fresh names for values assigned once (SSA): `prefix`, `id`, `_` and a
// counter unique to this generator ("x3_0", "x3_1", "w12_2").
class NameGenerator {
 public:
  std::string fresh(std::string_view prefix, int64_t id);

 private:
  int64_t next_ = 0;
};

class CodeWriter {
 public:
  // level: the indentation of the first line, in levels.
  explicit CodeWriter(int level = 0) : level_(level) {}

  // One line at the current indentation, its parts concatenated; an empty
  // line stays empty (no trailing spaces).
  template <typename... Parts>
  CodeWriter& line(const Parts&... parts) {
    std::string text;
    (text.append(parts), ...);
    return put_line(text);
  }

  // A line at column 0 whatever the indentation: a preprocessor directive
  // (#pragma) inside a block.
  CodeWriter& directive(std::string_view text);

  // Text already laid out (a fragment another writer produced), appended
  // as it is.
  CodeWriter& raw(std::string_view text);

  void indent() { ++level_; }
  void dedent();
  int level() const { return level_; }
  // The current indentation as spaces.
  std::string indentation() const { return std::string(2 * static_cast<size_t>(level_), ' '); }

  // A braced block: `head {` now, one level in, and `}` (then `tail`) when
  // the returned Block goes out of scope.
  class Block {
   public:
    Block(const Block&) = delete;
    Block& operator=(const Block&) = delete;
    Block(Block&& other) noexcept : writer_(other.writer_), tail_(std::move(other.tail_)) {
      other.writer_ = nullptr;
    }
    Block& operator=(Block&&) = delete;
    ~Block();

   private:
    friend class CodeWriter;
    Block(CodeWriter* writer, std::string tail) : writer_(writer), tail_(std::move(tail)) {}
    CodeWriter* writer_;
    std::string tail_;
  };
  [[nodiscard]] Block block(std::string_view head, std::string_view tail = "");

  // A fresh name for a value assigned once (NameGenerator).
  std::string fresh_name(std::string_view prefix, int64_t id) { return names_.fresh(prefix, id); }

  const std::string& text() const { return text_; }
  std::string take() { return std::move(text_); }

 private:
  CodeWriter& put_line(std::string_view text);

  std::string text_;
  int level_;
  NameGenerator names_;
};

}  // namespace kiln::compiler::codegen_detail
