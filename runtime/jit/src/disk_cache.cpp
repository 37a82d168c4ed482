#include "disk_cache.h"

#include <algorithm>
#include <array>
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
// reserved[12,16) payload_size[16,24) checksum_lo[24,32) checksum_hi[32,40)
// key[40,72) (hex); then the payload, then the MAC of all bytes before it.
constexpr size_t kKeyOffset = 40;
void put_u64(std::byte* at, uint64_t v) { std::memcpy(at, &v, sizeof v); }
uint64_t get_u64(const std::byte* at) {
  uint64_t v;
  std::memcpy(&v, at, sizeof v);
  return v;
}

// The header's key field: the hex, zero-padded (a key is kEntryKeyChars).
std::array<char, kEntryKeyChars> key_field(const std::string& key_hex) {
  std::array<char, kEntryKeyChars> field{};
  std::memcpy(field.data(), key_hex.data(), std::min(key_hex.size(), field.size()));
  return field;
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
  constexpr size_t kFramingBytes = kEntryHeaderSize + support::kMacBytes;
  bool ok =
      bytes.size() >= kFramingBytes && std::memcmp(data, kEntryMagic, sizeof kEntryMagic) == 0;
  if (ok) {
    uint32_t version;
    std::memcpy(&version, data + 8, sizeof version);
    ok = version == kEntryVersion && get_u64(data + 16) == bytes.size() - kFramingBytes;
  }
  const size_t payload_size = ok ? bytes.size() - kFramingBytes : 0;
  if (ok) {
    const compiler::Hash128 sum = compiler::hash_bytes(data + kEntryHeaderSize, payload_size);
    ok = sum.lo == get_u64(data + 24) && sum.hi == get_u64(data + 32);
  }
  Lookup refused = Lookup::corrupt;
  if (ok) {
    // Before anything else trusts the bytes: the checksum above tells a
    // damaged entry, this one that the key's holder wrote it.
    const size_t signed_size = kEntryHeaderSize + payload_size;
    support::Mac mac;
    std::memcpy(mac.data(), data + signed_size, mac.size());
    ok = support::mac_verify(std::string_view(bytes.data(), signed_size), mac, mac_key_);
    if (!ok) refused = Lookup::untrusted;
  }
  // This user's own entry, but under another key's name.
  if (ok) ok = std::memcmp(data + kKeyOffset, key_field(key_hex).data(), kEntryKeyChars) == 0;
  if (!ok) {
    std::error_code ignored;
    fs::remove(path, ignored);
    return refused;
  }
  payload.assign(data + kEntryHeaderSize, data + kEntryHeaderSize + payload_size);
  // The mtime is the entry's last use: pruning removes the least recent.
  std::error_code ignored;
  fs::last_write_time(path, fs::file_time_type::clock::now(), ignored);
  return Lookup::hit;
}

bool DiskCache::store(const std::string& key_hex, std::span<const std::byte> payload) const {
  const fs::path path = entry_path(key_hex);
  if (!make_cache_subdir(path.parent_path())) return false;
  const size_t signed_size = kEntryHeaderSize + payload.size();
  std::string bytes(signed_size + support::kMacBytes, '\0');
  auto* header = reinterpret_cast<std::byte*>(bytes.data());
  std::memcpy(header, kEntryMagic, sizeof kEntryMagic);
  std::memcpy(header + 8, &kEntryVersion, sizeof kEntryVersion);
  put_u64(header + 16, payload.size());
  const compiler::Hash128 sum = compiler::hash_bytes(payload.data(), payload.size());
  put_u64(header + 24, sum.lo);
  put_u64(header + 32, sum.hi);
  std::memcpy(header + kKeyOffset, key_field(key_hex).data(), kEntryKeyChars);
  if (!payload.empty()) std::memcpy(header + kEntryHeaderSize, payload.data(), payload.size());
  const support::Mac mac =
      support::mac_compute(std::string_view(bytes.data(), signed_size), mac_key_);
  std::memcpy(header + signed_size, mac.data(), mac.size());
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
