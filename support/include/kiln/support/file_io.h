// Whole-file writes that a reader never sees half done, and whole-file reads
// that never allocate more than the caller allows. Every module's files go
// through these two: packages, generated sources, profiles, cache entries,
// cache counters and compiler memos.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kiln::support {

// A file that could not be written or read. what() is
// "kiln: cannot write '<path>': <reason>" (or "read"); reason() is the part
// after the path, e.g. "fsync 'p.tmp.12.0': No space left on device", so a
// caller can put its own subject in front ("cannot write profile ...").
class FileError : public std::runtime_error {
 public:
  FileError(const char* verb, std::filesystem::path path, std::string reason, int error_number);

  const std::filesystem::path& path() const noexcept { return path_; }
  const std::string& reason() const noexcept { return reason_; }
  // The errno of the failed call; 0 when a limit, not a call, failed.
  int error_number() const noexcept { return error_number_; }

 private:
  std::filesystem::path path_;
  std::string reason_;
  int error_number_;
};

// An open file descriptor, closed on every path out; close's own error is
// the caller's to check where it matters (a written file), through
// release().
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  ~FileDescriptor();
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const noexcept { return fd_; }
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

enum class Durability {
  // fsync the file before the rename and its directory after: once the call
  // returns, the new bytes survive a crash.
  synced,
  // The rename alone: a reader still sees the old file or the new one whole,
  // but a crash may lose the update (counters not worth a disk flush).
  unsynced,
};

// The permission bits a new file gets (less the umask).
enum class FileMode : unsigned {
  shared = 0644,      // packages, generated sources: readable by everyone
  owner_only = 0600,  // cache entries, keys: this user's alone
};

// Replaces `path` with `bytes`: written to "<path>.tmp.<pid>.<n>" in the same
// directory, then renamed over `path`. The temp file is created with O_EXCL
// and O_NOFOLLOW, so two writers never share one and a file or symlink
// planted under its name is never written through (the next <n> is tried).
// The temp file is removed on failure; one left by a process that died is
// recognised by its ".tmp." (kiln cache stats, the generator's work
// directory). The project's one way to write a file whole: every module
// writes through this or create_file_atomic. Throws FileError.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes,
                       Durability durability = Durability::synced,
                       FileMode mode = FileMode::shared);

// As write_file_atomic (synced), but never replaces anything: the temp file
// is hard-linked to `path`, which fails when anything (a file, a symlink)
// is already there. Returns whether this call created `path`; of processes
// racing to create one path exactly one gets true, and the others find the
// winner's file whole. Throws FileError.
bool create_file_atomic(const std::filesystem::path& path, std::string_view bytes,
                        FileMode mode = FileMode::shared);

// As write_file_atomic, but leaves the file alone (mtime included) when it
// already holds `bytes`, so build tools see no change. Returns whether it
// wrote.
bool write_file_if_changed(const std::filesystem::path& path, std::string_view bytes);

// The file's bytes; nullopt when nothing exists at `path`. Throws FileError
// when it cannot be read or holds more than `max_bytes` (read up to one byte
// past the limit, never allocating more, also for a file that grows).
std::optional<std::string> read_file(const std::filesystem::path& path, uint64_t max_bytes);

// As read_file, but nullopt also when the file cannot be read or is larger
// than `max_bytes`: for caches and memos, where such a file is as good as
// none and the caller recomputes what it held.
std::optional<std::string> read_file_if_readable(const std::filesystem::path& path,
                                                 uint64_t max_bytes) noexcept;

}  // namespace kiln::support
