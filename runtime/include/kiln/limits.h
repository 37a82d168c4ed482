/// @file
/// Limits of the runtime's fixed-size dispatch arrays. A package over them is
/// refused at open rather than failing at a call. A header of their own so
/// that kiln/runtime.h and kiln/package_reader.h share them without the
/// application's header including the reader (and FlatBuffers).
#pragma once

#include <cstddef>

namespace kiln {

/// The most symbols one graph may have (kiln::sym).
inline constexpr size_t kMaxSymbols = 32;
inline constexpr size_t kMaxTensors = 256;        ///< inputs + outputs of one graph
inline constexpr size_t kMaxPlanBuffers = 1024;   ///< buffers of one launch plan
inline constexpr size_t kMaxLaunchBuffers = 256;  ///< arguments of one kernel
inline constexpr size_t kMaxExprStack = 32;       ///< SizeExpr evaluation depth

}  // namespace kiln
