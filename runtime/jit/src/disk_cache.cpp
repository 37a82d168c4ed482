#include "disk_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>

#include "kiln/compiler/hash.h"

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

bool write_all(int fd, const std::byte* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

fs::path DiskCache::entry_path(const std::string& key_hex) const {
  return dir_ / key_hex.substr(0, 2) / (key_hex + ".kjit");
}

DiskCache::Lookup DiskCache::load(const std::string& key_hex,
                                  std::vector<std::byte>& payload) const {
  const fs::path path = entry_path(key_hex);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Lookup::miss;
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
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
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return false;
  // pid + a per-process counter: unique among processes and threads sharing
  // the directory.
  static std::atomic<uint64_t> counter{0};
  const fs::path temp = path.string() + ".tmp." + std::to_string(::getpid()) + "." +
                        std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::byte header[kEntryHeaderSize] = {};
  std::memcpy(header, kEntryMagic, sizeof kEntryMagic);
  std::memcpy(header + 8, &kEntryVersion, sizeof kEntryVersion);
  put_u64(header + 16, payload.size());
  const compiler::Hash128 sum = compiler::hash_bytes(payload.data(), payload.size());
  put_u64(header + 24, sum.lo);
  put_u64(header + 32, sum.hi);
  bool ok = write_all(fd, header, sizeof header) && write_all(fd, payload.data(), payload.size());
  ok = (::close(fd) == 0) && ok;
  if (ok) ok = ::rename(temp.c_str(), path.c_str()) == 0;
  if (!ok) fs::remove(temp, ec);
  return ok;
}

}  // namespace kiln::jit::detail
