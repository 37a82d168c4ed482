#include "cache_stats_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <charconv>
#include <sstream>
#include <string_view>

#include "kiln/support/file_io.h"

namespace kiln::jit::detail {
namespace fs = std::filesystem;
namespace {

// A line per counter, some 30 of them: anything near this is not a stats file.
constexpr uint64_t kMaxBytes = 1 << 20;

StatsMap parse(std::string_view text) {
  StatsMap out;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    const size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0) continue;
    uint64_t value = 0;
    const std::string_view digits = line.substr(space + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end != digits.data() + digits.size()) continue;
    out[std::string(line.substr(0, space))] += value;
  }
  return out;
}

// Holds an exclusive flock for its lifetime; released (and closed) on exit,
// also when the process dies, so a crashed writer never wedges the cache.
class FileLock {
 public:
  explicit FileLock(const fs::path& path)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) {
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool held() const { return fd_ >= 0; }

 private:
  int fd_;
};

}  // namespace

bool add_to_cache_stats(const fs::path& dir, const StatsMap& delta) {
  // The directory is the JIT's, checked when it was opened: made here, it
  // would be made unchecked.
  const FileLock lock(dir / "stats.lock");
  if (!lock.held()) return false;
  StatsMap stats = read_cache_stats(dir);
  for (const auto& [name, value] : delta) stats[name] += value;
  std::ostringstream text;
  for (const auto& [name, value] : stats) text << name << ' ' << value << '\n';
  // Renamed into place for readers that take no lock (`kiln cache stats`),
  // but not fsynced: counters are not worth a disk flush on the hit path.
  try {
    support::write_file_atomic(dir / "stats", text.str(), support::Durability::unsynced,
                               support::FileMode::owner_only);
  } catch (const support::FileError&) {
    return false;
  }
  return true;
}

StatsMap read_cache_stats(const fs::path& dir) {
  const std::optional<std::string> text = support::read_file_if_readable(dir / "stats", kMaxBytes);
  return text ? parse(*text) : StatsMap{};
}

}  // namespace kiln::jit::detail
