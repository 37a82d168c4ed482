#include "kiln/support/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

namespace kiln::support {
namespace fs = std::filesystem;
namespace {

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

std::string call_failed(std::string_view call, const fs::path& path, int error_number) {
  return std::string(call) + " " + quoted(path) + ": " + std::strerror(error_number);
}

[[noreturn]] void fail_write(const fs::path& path, std::string_view call, const fs::path& on,
                             int error_number) {
  throw FileError("write", path, call_failed(call, on, error_number), error_number);
}

[[noreturn]] void fail_read(const fs::path& path, std::string_view call, int error_number) {
  throw FileError("read", path, call_failed(call, path, error_number), error_number);
}

[[noreturn]] void fail_too_large(const fs::path& path, uint64_t max_bytes, std::string_view held) {
  throw FileError("read", path,
                  "expected at most " + std::to_string(max_bytes) + " bytes, the file holds " +
                      std::string(held),
                  0);
}

// Removes the temp file unless the rename took it.
class TempFile {
 public:
  explicit TempFile(fs::path path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(TempFile&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  TempFile& operator=(TempFile&&) = delete;
  const fs::path& path() const { return path_; }
  void renamed() { path_.clear(); }

 private:
  fs::path path_;
};

void write_all(const fs::path& path, const fs::path& temp, int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    // write() of a non-empty buffer returning 0 is a full device that did
    // not say so.
    if (n <= 0) fail_write(path, "write", temp, n < 0 ? errno : ENOSPC);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// The rename is durable only once the directory entry is: fsync the
// directory. A file system that cannot sync directories (EINVAL) has
// nothing more to make durable.
void sync_directory(const fs::path& path) {
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) fail_write(path, "open directory", dir, errno);
  if (::fsync(fd.get()) != 0 && errno != EINVAL) fail_write(path, "fsync directory", dir, errno);
}

// A temp file beside `path`, written whole and closed (fsynced when
// `durability` asks): the caller renames or links it into place.
TempFile write_temp(const fs::path& path, std::string_view bytes, Durability durability,
                    FileMode mode) {
  static std::atomic<unsigned> sequence{0};
  // A name taken (by a writer of an earlier process with this pid that
  // died, or by something planted) is skipped, never written through.
  constexpr int kNamesToTry = 64;
  fs::path temp_path;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    temp_path = path;
    temp_path += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(sequence.fetch_add(1));
    fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                static_cast<mode_t>(mode));
    if (fd < 0 && (errno != EEXIST || attempt + 1 == kNamesToTry)) {
      fail_write(path, "create", temp_path, errno);
    }
  }
  FileDescriptor file(fd);
  TempFile temp(std::move(temp_path));
  write_all(path, temp.path(), file.get(), bytes);
  if (durability == Durability::synced && ::fsync(file.get()) != 0) {
    fail_write(path, "fsync", temp.path(), errno);
  }
  if (::close(file.release()) != 0) fail_write(path, "close", temp.path(), errno);
  return temp;
}

}  // namespace

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

FileError::FileError(const char* verb, fs::path path, std::string reason, int error_number)
    : std::runtime_error("kiln: cannot " + std::string(verb) + " " + quoted(path) + ": " + reason),
      path_(std::move(path)),
      reason_(std::move(reason)),
      error_number_(error_number) {}

void write_file_atomic(const fs::path& path, std::string_view bytes, Durability durability,
                       FileMode mode) {
  TempFile temp = write_temp(path, bytes, durability, mode);
  if (::rename(temp.path().c_str(), path.c_str()) != 0) {
    fail_write(path, "rename", temp.path(), errno);
  }
  temp.renamed();
  if (durability == Durability::synced) sync_directory(path);
}

bool create_file_atomic(const fs::path& path, std::string_view bytes, FileMode mode) {
  // The temp file is removed whatever happens: linked, `path` holds it.
  const TempFile temp = write_temp(path, bytes, Durability::synced, mode);
  if (::link(temp.path().c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) return false;
    fail_write(path, "link", temp.path(), errno);
  }
  sync_directory(path);
  return true;
}

bool write_file_if_changed(const fs::path& path, std::string_view bytes) {
  // A file larger than `bytes` differs from it: reading more is not needed.
  if (read_file_if_readable(path, bytes.size()) == bytes) return false;
  write_file_atomic(path, bytes);
  return true;
}

std::optional<std::string> read_file(const fs::path& path, uint64_t max_bytes) {
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::nullopt;
    fail_read(path, "open", errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail_read(path, "fstat", errno);
  if (S_ISDIR(st.st_mode)) fail_read(path, "read", EISDIR);
  const auto size = static_cast<uint64_t>(std::max<off_t>(st.st_size, 0));
  if (size > max_bytes) fail_too_large(path, max_bytes, std::to_string(size));
  // One byte past the limit tells a file that grew past it from one that
  // ends there; one past the size sees the end without a second resize.
  const uint64_t ceiling = max_bytes == UINT64_MAX ? max_bytes : max_bytes + 1;
  std::string bytes(std::min(ceiling, size + 1), '\0');
  size_t filled = 0;
  for (;;) {
    if (filled == bytes.size()) {
      if (bytes.size() >= ceiling) {
        fail_too_large(path, max_bytes, "more than that");
      }
      bytes.resize(std::min<uint64_t>(ceiling, std::max<uint64_t>(4096, 2 * bytes.size())));
    }
    const ssize_t n = ::read(fd.get(), bytes.data() + filled, bytes.size() - filled);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_read(path, "read", errno);
    if (n == 0) break;
    filled += static_cast<size_t>(n);
  }
  bytes.resize(filled);
  return bytes;
}

std::optional<std::string> read_file_if_readable(const fs::path& path,
                                                 uint64_t max_bytes) noexcept {
  try {
    return read_file(path, max_bytes);
  } catch (...) {  // FileError, or std::bad_alloc: as good as no file
    return std::nullopt;
  }
}

}  // namespace kiln::support
