// The JIT's on-disk cache: one file per entry, named by the key's hex, under
// a two-digit fan-out directory (ab/abcdef...kjit) as ccache does. Each file
// is a fixed header (magic, format version, payload size, XXH3-128 of the
// payload, the key), the payload (cache_entry.h), and a MAC of everything
// before it under the cache's per-user key (cache_dir.h): an entry anyone
// without the key wrote or changed is never loaded. Entries are written to a
// temp file in the same directory and renamed into place, so a reader sees a
// whole entry or none, and two processes storing one key leave one entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "kiln/support/crypto.h"

namespace kiln::jit::detail {

inline constexpr char kEntryMagic[8] = {'K', 'I', 'L', 'N', 'J', 'I', 'T', '\0'};
// 2: the payload is a CacheEntry (cache_entry.h), specialization and code.
// 3: the header holds the key, and a MAC follows the payload. An entry of
// an earlier format is a corrupt entry, rewritten.
inline constexpr uint32_t kEntryVersion = 3;
inline constexpr size_t kEntryHeaderSize = 72;
// The key's hex in the header: Hash128::hex().
inline constexpr size_t kEntryKeyChars = 32;
// An entry holds one specialization's shared object or cubins: one larger
// than this is not an entry this code wrote, and is read as a miss.
inline constexpr uint64_t kMaxEntryBytes = uint64_t{1} << 30;

class DiskCache {
 public:
  enum class Lookup { hit, miss, corrupt, untrusted };

  // `dir` has passed open_cache_dir; `mac_key` is its load_cache_key().
  DiskCache(std::filesystem::path dir, const support::MacKey& mac_key)
      : dir_(std::move(dir)), mac_key_(mac_key) {}
  ~DiskCache() { support::secure_zero(mac_key_); }
  DiskCache(const DiskCache&) = delete;
  DiskCache& operator=(const DiskCache&) = delete;

  const std::filesystem::path& dir() const noexcept { return dir_; }
  std::filesystem::path entry_path(const std::string& key_hex) const;

  // hit: `payload` holds the checked bytes. corrupt: the file is there but
  // short, or its magic, version, size, checksum or key is wrong. untrusted:
  // its MAC is not this cache's key's (written or changed by someone
  // without it). Either is removed, so the caller's rewrite starts clean.
  // The MAC is checked before the payload leaves this call: nothing
  // unchecked is ever written to a .so or loaded.
  Lookup load(const std::string& key_hex, std::vector<std::byte>& payload) const;

  // Atomic (temp file + rename). Returns false, leaving no entry and no temp
  // file, when the directory cannot be written: a cache that cannot store is
  // slower, not broken.
  bool store(const std::string& key_hex, std::span<const std::byte> payload) const;

  // Removes an entry whose payload its reader refused (checksummed, but not
  // an entry it can use), so the rewrite starts clean.
  void remove(const std::string& key_hex) const;

 private:
  std::filesystem::path dir_;
  support::MacKey mac_key_;
};

}  // namespace kiln::jit::detail
