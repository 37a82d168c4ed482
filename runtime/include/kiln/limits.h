/// @file
/// Limits of the runtime's fixed-size dispatch arrays. A package over them is
/// refused at open rather than failing at a call. A header of their own so
/// that kiln/runtime.h and kiln/package_reader.h share them without the
/// application's header including the reader (and FlatBuffers).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln {

/// The most symbols one graph may have (kiln::sym).
inline constexpr size_t kMaxSymbols = 32;
inline constexpr size_t kMaxTensors = 256;        ///< inputs + outputs of one graph
inline constexpr size_t kMaxPlanBuffers = 1024;   ///< buffers of one launch plan
inline constexpr size_t kMaxLaunchBuffers = 256;  ///< arguments of one kernel
inline constexpr size_t kMaxExprStack = 32;       ///< SizeExpr evaluation depth

/// How much memory opening and running a package may take for its own
/// bytes, whatever its header and manifest claim (OpenOptions::limits,
/// PackageReader's open functions). A package over a limit is
/// PackageError(resource_limit), raised before anything that large is
/// allocated.
struct PackageLimits {
  /// The most bytes a package file may have; its header's file_size is
  /// checked against it before the file is read. 1 GiB: a package holds
  /// kernels, not weights.
  uint64_t max_file_bytes = uint64_t{1} << 30;
  /// The most bytes the package's compressed blobs may decompress to, all
  /// together (the sum of their raw_size), checked when the package opens.
  /// 256 MiB: far above any package the compiler writes, far below what a
  /// small file claiming a huge zstd frame could make the reader allocate.
  uint64_t max_decompressed_bytes = uint64_t{256} << 20;
};

}  // namespace kiln
