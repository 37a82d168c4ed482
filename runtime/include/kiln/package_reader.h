/// @file
/// Reads and verifies a .kiln file. Everything in the file is checked before
/// any of it is used: header, sizes, checksum, the FlatBuffers verifier, then
/// the manifest's own consistency (indices, targets, blob ranges). Blobs are
/// checked (hash) and decompressed on first use. Includes the generated
/// FlatBuffers code (manifest() returns its types): kiln/runtime.h only
/// declares PackageReader, so an application parses this header only when it
/// reads a package's manifest itself (as `kiln inspect` does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/abi/package_header.h"
#include "kiln/limits.h"

namespace kiln {

/// The CPU and CUDA targets this runtime knows; anything else in a package is
/// ErrorCode::package_unknown_target.
bool is_known_target_name(std::string_view name) noexcept;

/// A verified package file: its header, its manifest and its blobs. Move-only.
/// Each open function throws Error(io) when the file cannot be read and
/// PackageError (bad magic, unsupported version, truncated, checksum mismatch,
/// FlatBuffers verifier failed, unknown target, corrupt manifest) when the bytes
/// are not a valid package, PackageError(resource_limit) when they are over
/// a PackageLimits, and Error(resource_limit) when memory runs out.
class PackageReader {
 public:
  /// Reads the file into memory: its header first, then the file_size
  /// bytes the header gives, when that is the file's size and within
  /// `limits`. Over a limit: PackageError(resource_limit).
  static PackageReader open_file(const std::filesystem::path& path,
                                 const PackageLimits& limits = {});
  /// Copies the bytes (after checking the header).
  static PackageReader open_memory(std::span<const std::byte> bytes,
                                   const PackageLimits& limits = {});
  /// Borrows the bytes, which must outlive the reader (an embedded package).
  /// Bytes that are not 16-byte aligned are copied, since FlatBuffers reads
  /// scalars in place.
  static PackageReader open_borrowed(std::span<const std::byte> bytes,
                                     const PackageLimits& limits = {});

  /// Moves the reader.
  PackageReader(PackageReader&&) noexcept;
  /// Moves the reader.
  PackageReader& operator=(PackageReader&&) noexcept;
  ~PackageReader();

  /// The fixed header (kiln/abi/package_header.h).
  const KilnPackageHeader& header() const noexcept;
  /// The verified manifest (schemas/kiln_package.fbs).
  const fb::Manifest& manifest() const noexcept;
  /// The whole file.
  std::span<const std::byte> file_bytes() const noexcept;

  /// The blob's stored bytes (compressed or not), as they are in the file.
  std::span<const std::byte> stored_blob(uint32_t index) const;
  /// The blob's contents: hash checked, decompressed, cached. Thread-safe.
  /// Throws PackageError(package_checksum_mismatch or package_corrupt), or
  /// Error(resource_limit) when its memory cannot be allocated.
  std::span<const std::byte> blob(uint32_t index) const;
  /// blob() for every blob: the full check `kiln verify` does.
  /// @throws PackageError as blob().
  void verify_all_blobs() const;

 private:
  struct State;
  explicit PackageReader(std::unique_ptr<State> state);
  std::span<const std::byte> decode_blob(uint32_t index) const;
  std::unique_ptr<State> state_;
};

}  // namespace kiln
