#include <charconv>
#include <string_view>

#include "kiln/package_reader.h"

namespace kiln {

bool is_known_target_name(std::string_view name) noexcept {
  if (name == "cpu:x86-64" || name == "cpu:x86-64-v2" || name == "cpu:x86-64-v3" ||
      name == "cpu:x86-64-v4") {
    return true;
  }
  constexpr std::string_view kCudaPrefix = "cuda:sm_";
  if (!name.starts_with(kCudaPrefix)) return false;
  std::string_view digits = name.substr(kCudaPrefix.size());
  if (digits.size() < 2 || digits.size() > 3 || digits[0] == '0') return false;
  int arch = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), arch);
  if (error != std::errc() || end != digits.data() + digits.size()) return false;
  return arch >= 50 && arch <= 120;
}

}  // namespace kiln
