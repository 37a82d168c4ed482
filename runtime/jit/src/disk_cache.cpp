#include "disk_cache.h"

#include <cstdint>
#include <cstring>
#include <optional>

#include "cache_dir.h"
#include "kiln/compiler/hash.h"
#include "kiln/support/file_io.h"

namespace kiln::jit::detail {
namespace fs = std::filesystem;
namespace {

// Little-endian fields at fixed offsets: magic[0,8) version[8,12)
// reserved[12,16) payload_size[16,24) checksum_lo[24,32) checksum_hi[32,40).
void put_u64(std::byte* at, uint64_t v) { std::memcpy(at, &v, sizeof v); }
uint64_t get_u64(const std::byte* at) {
  uint64_t v;
  std::memcpy(&v, at, sizeof v);
  return v;
}

}  // namespace

fs::path DiskCache::entry_path(const std::string& key_hex) const {
  return dir_ / key_hex.substr(0, 2) / (key_hex + ".kjit");
}

DiskCache::Lookup DiskCache::load(const std::string& key_hex,
                                  std::vector<std::byte>& payload) const {
  const fs::path path = entry_path(key_hex);
  const std::optional<std::string> file = support::read_file_if_readable(path, kMaxEntryBytes);
  if (!file) return Lookup::miss;
  const std::string& bytes = *file;
  const auto* data = reinterpret_cast<const std::byte*>(bytes.data());
  bool ok =
      bytes.size() >= kEntryHeaderSize && std::memcmp(data, kEntryMagic, sizeof kEntryMagic) == 0;
  if (ok) {
    uint32_t version;
    std::memcpy(&version, data + 8, sizeof version);
    ok = version == kEntryVersion && get_u64(data + 16) == bytes.size() - kEntryHeaderSize;
  }
  if (ok) {
    const compiler::Hash128 sum =
        compiler::hash_bytes(data + kEntryHeaderSize, bytes.size() - kEntryHeaderSize);
    ok = sum.lo == get_u64(data + 24) && sum.hi == get_u64(data + 32);
  }
  if (!ok) {
    std::error_code ignored;
    fs::remove(path, ignored);
    return Lookup::corrupt;
  }
  payload.assign(data + kEntryHeaderSize, data + bytes.size());
  // The mtime is the entry's last use: pruning removes the least recent.
  std::error_code ignored;
  fs::last_write_time(path, fs::file_time_type::clock::now(), ignored);
  return Lookup::hit;
}

bool DiskCache::store(const std::string& key_hex, std::span<const std::byte> payload) const {
  const fs::path path = entry_path(key_hex);
  if (!make_cache_subdir(path.parent_path())) return false;
  std::string bytes(kEntryHeaderSize + payload.size(), '\0');
  auto* header = reinterpret_cast<std::byte*>(bytes.data());
  std::memcpy(header, kEntryMagic, sizeof kEntryMagic);
  std::memcpy(header + 8, &kEntryVersion, sizeof kEntryVersion);
  put_u64(header + 16, payload.size());
  const compiler::Hash128 sum = compiler::hash_bytes(payload.data(), payload.size());
  put_u64(header + 24, sum.lo);
  put_u64(header + 32, sum.hi);
  if (!payload.empty()) std::memcpy(header + kEntryHeaderSize, payload.data(), payload.size());
  // A temp file renamed into place: readers in other processes see the
  // whole entry or none.
  try {
    support::write_file_atomic(path, bytes, support::Durability::synced,
                               support::FileMode::owner_only);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

void DiskCache::remove(const std::string& key_hex) const {
  std::error_code ignored;
  fs::remove(entry_path(key_hex), ignored);
}

}  // namespace kiln::jit::detail
