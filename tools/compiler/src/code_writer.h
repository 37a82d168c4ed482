// Internal to the codegen: a small writer of generated source, as Halide's
// CodeGen_C and TVM's CodeGenSourceBase keep one. It holds the lines and
// the indentation (two spaces a level), so an emitter says what a line is
// and not how far it is indented or where its braces close.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::compiler::codegen_detail {

// Fresh names for values assigned once (SSA): `prefix`, `id`, `_` and a
// counter unique to this generator ("x3_0", "x3_1", "w12_2"). One kernel
// keeps one (GroupEmitter::fresh_name), whichever writer or fragment a name
// is written by.
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
    pieces_.push_back({Piece::Kind::line, level_, std::move(text)});
    return *this;
  }

  // A line at column 0 whatever the indentation: a preprocessor directive
  // (#pragma) inside a block.
  CodeWriter& directive(std::string_view text);

  // Text already laid out (helper functions, a header), appended as it is.
  CodeWriter& raw(std::string_view text);

  // A fragment written ahead of where it goes (a loop body, written before
  // the declarations it makes the loop need): its lines at the current
  // indentation plus their own; its directives and raw text as they are.
  CodeWriter& insert(const CodeWriter& fragment);

  void indent() { ++level_; }
  void dedent();
  int level() const { return level_; }
  bool empty() const { return pieces_.empty(); }

  // A braced block: `head {` now, one level in, and `}` (then `tail`) when
  // the returned Block goes out of scope. chain() continues it with another
  // branch: `} head {` ("} else {").
  class Block {
   public:
    Block(const Block&) = delete;
    Block& operator=(const Block&) = delete;
    Block(Block&& other) noexcept : writer_(other.writer_), tail_(std::move(other.tail_)) {
      other.writer_ = nullptr;
    }
    Block& operator=(Block&&) = delete;
    ~Block();

    void chain(std::string_view head);

   private:
    friend class CodeWriter;
    Block(CodeWriter* writer, std::string tail) : writer_(writer), tail_(std::move(tail)) {}
    CodeWriter* writer_;
    std::string tail_;
  };
  [[nodiscard]] Block block(std::string_view head, std::string_view tail = "");

  // The text written so far.
  std::string text() const;

 private:
  struct Piece {
    enum class Kind : uint8_t { line, directive, raw };
    Kind kind;
    int level;  // a line's
    std::string text;
  };

  std::vector<Piece> pieces_;
  int level_;
};

}  // namespace kiln::compiler::codegen_detail
