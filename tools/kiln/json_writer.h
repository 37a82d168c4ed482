// A minimal streaming JSON writer for `kiln inspect --json`: the CLI needs
// objects, arrays, strings and integers, not a JSON library.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::cli {

class JsonWriter {
 public:
  void begin_object();
  void end_object();
  void begin_array();
  void end_array();
  // Inside an object, before each value.
  void key(std::string_view name);
  void value(std::string_view text);
  void value(const char* text) { value(std::string_view(text)); }
  void value(int64_t number);
  void value(uint64_t number);
  void value(int number) { value(static_cast<int64_t>(number)); }
  void value(unsigned number) { value(static_cast<uint64_t>(number)); }
  void value(double number);
  void value(bool flag);
  void null();

  const std::string& text() const { return out_; }

 private:
  void before_value();
  std::string out_;
  // Per open container: whether it has a member yet.
  std::vector<bool> has_member_;
  bool after_key_ = false;
};

std::string json_escape(std::string_view text);

}  // namespace kiln::cli
