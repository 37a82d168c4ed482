// The codegen's source writer (code_writer.h).
#include "code_writer.h"

#include <stdexcept>

namespace kiln::compiler::codegen_detail {

CodeWriter& CodeWriter::directive(std::string_view text) {
  pieces_.push_back({Piece::Kind::directive, 0, std::string(text)});
  return *this;
}

CodeWriter& CodeWriter::raw(std::string_view text) {
  pieces_.push_back({Piece::Kind::raw, 0, std::string(text)});
  return *this;
}

CodeWriter& CodeWriter::insert(const CodeWriter& fragment) {
  for (const Piece& p : fragment.pieces_) {
    pieces_.push_back(p);
    if (p.kind == Piece::Kind::line) pieces_.back().level += level_;
  }
  return *this;
}

void CodeWriter::dedent() {
  if (level_ == 0) throw std::logic_error("kiln codegen: CodeWriter dedented below column 0");
  --level_;
}

CodeWriter::Block CodeWriter::block(std::string_view head, std::string_view tail) {
  std::string open(head);
  open += open.empty() ? "{" : " {";
  line(open);
  indent();
  return Block(this, std::string(tail));
}

void CodeWriter::Block::chain(std::string_view head) {
  writer_->dedent();
  writer_->line("} ", head, " {");
  writer_->indent();
}

CodeWriter::Block::~Block() {
  if (writer_ == nullptr) return;
  writer_->level_ = writer_->level_ > 0 ? writer_->level_ - 1 : 0;
  writer_->line("}", tail_);
}

std::string CodeWriter::text() const {
  std::string out;
  for (const Piece& p : pieces_) {
    if (p.kind == Piece::Kind::line && !p.text.empty()) {
      out.append(2 * static_cast<size_t>(p.level), ' ');
    }
    out += p.text;
    if (p.kind != Piece::Kind::raw) out += '\n';
  }
  return out;
}

std::string NameGenerator::fresh(std::string_view prefix, int64_t id) {
  std::string name(prefix);
  name += std::to_string(id);
  name += '_';
  name += std::to_string(next_++);
  return name;
}

}  // namespace kiln::compiler::codegen_detail
