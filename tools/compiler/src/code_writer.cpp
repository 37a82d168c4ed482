// The codegen's source writer (code_writer.h).
#include "code_writer.h"

#include <stdexcept>

namespace kiln::compiler::codegen_detail {

CodeWriter& CodeWriter::put_line(std::string_view text) {
  if (!text.empty()) text_ += indentation();
  text_ += text;
  text_ += '\n';
  return *this;
}

CodeWriter& CodeWriter::directive(std::string_view text) {
  text_ += text;
  text_ += '\n';
  return *this;
}

CodeWriter& CodeWriter::raw(std::string_view text) {
  text_ += text;
  return *this;
}

void CodeWriter::dedent() {
  if (level_ == 0) throw std::logic_error("kiln codegen: CodeWriter dedented below column 0");
  --level_;
}

CodeWriter::Block CodeWriter::block(std::string_view head, std::string_view tail) {
  std::string open(head);
  open += open.empty() ? "{" : " {";
  put_line(open);
  indent();
  return Block(this, std::string(tail));
}

CodeWriter::Block::~Block() {
  if (writer_ == nullptr) return;
  writer_->level_ = writer_->level_ > 0 ? writer_->level_ - 1 : 0;
  writer_->put_line("}" + tail_);
}

std::string NameGenerator::fresh(std::string_view prefix, int64_t id) {
  std::string name(prefix);
  name += std::to_string(id);
  name += '_';
  name += std::to_string(next_++);
  return name;
}

}  // namespace kiln::compiler::codegen_detail
