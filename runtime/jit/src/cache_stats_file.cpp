#include "cache_stats_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <charconv>
#include <sstream>
#include <string_view>

#include "kiln/compiler/file_io.h"

namespace kiln::jit::detail {
namespace fs = std::filesystem;
namespace {

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
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
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
  std::error_code ec;
  fs::create_directories(dir, ec);
  const FileLock lock(dir / "stats.lock");
  if (!lock.held()) return false;
  StatsMap stats = read_cache_stats(dir);
  for (const auto& [name, value] : delta) stats[name] += value;
  std::ostringstream text;
  for (const auto& [name, value] : stats) text << name << ' ' << value << '\n';
  // Renamed into place for readers that take no lock (`kiln cache stats`),
  // but not fsynced: counters are not worth a disk flush on the hit path.
  const std::string bytes = text.str();
  const fs::path temp = dir / ("stats.tmp." + std::to_string(::getpid()));
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool written =
      ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  ::close(fd);
  if (!written || ::rename(temp.c_str(), (dir / "stats").c_str()) != 0) {
    fs::remove(temp, ec);
    return false;
  }
  return true;
}

StatsMap read_cache_stats(const fs::path& dir) {
  const std::optional<std::string> text = compiler::read_file(dir / "stats");
  return text ? parse(*text) : StatsMap{};
}

}  // namespace kiln::jit::detail
