/// @file
/// Element types. The numeric values equal kiln.fb.DType in the package schema,
/// so compiler and runtime convert by cast.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace kiln {

/// An element type: f32, f16, bf16, f64, i32, i64 or boolean.
enum class DType : uint8_t { f32 = 0, f16 = 1, bf16 = 2, f64 = 3, i32 = 4, i64 = 5, boolean = 6 };

/// The number of dtypes.
inline constexpr int kDTypeCount = 7;

/// "f32", "f16", "bf16", "f64", "i32", "i64", "bool".
constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::f16:
      return "f16";
    case DType::bf16:
      return "bf16";
    case DType::f64:
      return "f64";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
    case DType::boolean:
      return "bool";
  }
  return "?";
}

/// The dtype dtype_name() spells `s`, or nullopt.
constexpr std::optional<DType> dtype_from_name(std::string_view s) {
  for (int i = 0; i < kDTypeCount; ++i) {
    if (dtype_name(static_cast<DType>(i)) == s) return static_cast<DType>(i);
  }
  return std::nullopt;
}

/// Bytes per element.
constexpr int dtype_size(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::f16:
    case DType::bf16:
      return 2;
    case DType::f64:
      return 8;
    case DType::i32:
      return 4;
    case DType::i64:
      return 8;
    case DType::boolean:
      return 1;
  }
  return 0;
}

/// True for f32, f16, bf16 and f64.
constexpr bool dtype_is_float(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::f64;
}

}  // namespace kiln
