/// @file
/// Reads and verifies a .kiln file. Everything in the file is checked before
/// any of it is used: header, sizes, checksum, the FlatBuffers verifier, then
/// the manifest's own consistency (indices, targets, blob ranges). Blobs are
/// checked (XXH3-128 hash, BLAKE2b-256 digest) and decompressed on first use. Includes the
/// generated FlatBuffers code (manifest() returns its types): kiln/runtime.h only declares
/// PackageReader, so an application parses this header only when it reads a package's manifest
/// itself (as `kiln inspect` does).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/abi/package_header.h"
#include "kiln/limits.h"

namespace kiln {

struct OpenOptions;

/// Who signed a package: the ed25519 key of its signature block (format 1.2,
/// docs/package-format.md), whose signature the reader verified at open.
struct PackageSigner {
  std::array<uint8_t, 32> public_key{};  ///< the ed25519 public key of the signature block
  std::string key_id;  ///< the first 16 hex digits of public_key: how messages name it
};

/// A public key trusted to sign packages.
struct TrustedKey {
  std::array<uint8_t, 32> public_key{};  ///< the ed25519 public key
  std::string key_id;                    ///< as PackageSigner::key_id
  std::string comment;  ///< the .pub line's comment (who holds the key), may be empty
  std::string source;   ///< where it was given: "key file 'k.pub'", "OpenOptions::trusted_keys[0]"
};

/// The keys `options` trusts: trusted_keys, then trusted_key_files, then each
/// .pub file of KILN_TRUSTED_KEYS (a ':'-separated list; empty entries are
/// skipped). @throws Error(invalid_argument) for a key that is not a public
/// key, Error(io) for a file that cannot be read; each names the key's source.
std::vector<TrustedKey> trusted_keys_of(const OpenOptions& options);
/// The keys of the .pub files in `path_list` (':'-separated, as
/// KILN_TRUSTED_KEYS); `origin` prefixes each source. Throws as trusted_keys_of().
std::vector<TrustedKey> trusted_key_files_of(std::string_view path_list, std::string_view origin);

/// The CPU and CUDA targets this runtime knows; anything else in a package is
/// ErrorCode::package_unknown_target.
bool is_known_target_name(std::string_view name) noexcept;

/// A verified package file: its header, its manifest and its blobs. Move-only.
/// Each open function throws Error(io) when the file cannot be read,
/// PackageError (bad magic, unsupported version, truncated, checksum mismatch,
/// FlatBuffers verifier failed, unknown target, corrupt manifest) when the bytes
/// are not a valid package, PackageError(resource_limit) when they are over
/// a PackageLimits, Error(resource_limit) when memory runs out, and
/// UntrustedPackageError(bad_signature) when the package is signed and its
/// signature does not verify. Whose signature is trusted is not the reader's
/// concern: check_package_trust().
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
  /// Who signed the package (verified at open), or nullopt when it is unsigned.
  const std::optional<PackageSigner>& signer() const noexcept;

  /// The blob's stored bytes (compressed or not), as they are in the file.
  std::span<const std::byte> stored_blob(uint32_t index) const;
  /// The blob's contents: hash and digest checked, decompressed, cached.
  /// Thread-safe. Throws PackageError(package_checksum_mismatch or
  /// package_corrupt), UntrustedPackageError(bad_signature) when a signed
  /// package's blob does not match its signed digest, or
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

/// The trust policy (docs/runtime.md): with `trusted` empty, accepts the
/// package and returns nullptr; else returns the trusted key that signed it,
/// or throws UntrustedPackageError for an unsigned package or one signed by
/// another key, naming its key id and the trusted ones. (A signature that
/// does not verify never gets here: the reader refused it at open.)
const TrustedKey* check_package_trust(const PackageReader& reader,
                                      std::span<const TrustedKey> trusted);

}  // namespace kiln
