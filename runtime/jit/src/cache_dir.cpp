#include "cache_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "kiln/error.h"
#include "kiln/jit/jit_error.h"
#include "kiln/support/file_io.h"

namespace kiln::jit::detail {
namespace fs = std::filesystem;
namespace {

// Symlinks followed while resolving one path, as the kernel's ELOOP limit.
constexpr int kMaxSymlinks = 40;

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::string quoted(const fs::path& p) {
  std::string text = "'";
  text += p.string();
  text += '\'';
  return text;
}

// "owned by uid 1001, mode 0755"
std::string found(const struct stat& st) {
  return "owned by uid " + std::to_string(st.st_uid) + ", mode " + octal_mode(st.st_mode);
}

[[noreturn]] void refuse(const fs::path& path, const std::string& why) {
  throw CacheDirError(path, "kiln: JIT cache directory: " + why);
}

bool owned_by_user_or_root(const struct stat& st) {
  return st.st_uid == ::geteuid() || st.st_uid == 0;
}

bool writable_by_others(const struct stat& st) { return (st.st_mode & (S_IWGRP | S_IWOTH)) != 0; }

// A directory on the way to the cache (not the cache itself): another user
// who owns it, or may write it without the sticky bit, could swap what is
// below it.
void check_ancestor(const fs::path& path, const struct stat& st, const fs::path& cache) {
  if (!owned_by_user_or_root(st)) {
    refuse(path, quoted(path) + " above " + quoted(cache) + " is " + found(st) +
                     ": its owner could replace the cache; expected this user (uid " +
                     std::to_string(::geteuid()) + ") or root");
  }
  if (writable_by_others(st) && (st.st_mode & S_ISVTX) == 0) {
    refuse(path, quoted(path) + " above " + quoted(cache) + " is " + found(st) +
                     ": others may write it and replace the cache below it; expected no group "
                     "or other write, or the sticky bit (as /tmp has)");
  }
}

// The cache directory itself, reached and a directory.
void check_cache(const fs::path& path, const struct stat& st) {
  const uid_t user = ::geteuid();
  if (st.st_uid != user) {
    refuse(path, quoted(path) + " is " + found(st) + ", expected this user (uid " +
                     std::to_string(user) +
                     "): another user's directory may hold code they planted; use a directory "
                     "of your own (KILN_CACHE_DIR or JitOptions::cache_dir)");
  }
  if (writable_by_others(st)) {
    refuse(path, quoted(path) + " is " + found(st) +
                     ": others may write it, so it may already hold code they planted; check "
                     "it (or `kiln cache clear --dir` it), then `chmod 0700 " +
                     path.string() + "`");
  }
  if ((st.st_mode & 077) != 0) {
    // Made by an older Kiln (0755): no one else could write it, so what is
    // in it is this user's; closed like a directory Kiln makes now.
    if (::chmod(path.c_str(), 0700) != 0) {
      refuse(path, quoted(path) + " is " + found(st) + " and chmod 0700 failed: " +
                       std::strerror(errno) + "; run `chmod 0700 " + path.string() + "`");
    }
    std::fprintf(stderr, "kiln: JIT cache directory '%s' had mode %s; set to 0700\n", path.c_str(),
                 octal_mode(st.st_mode).c_str());
  }
}

// Closes on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The key file's bytes, checked; nullopt when there is none yet.
std::optional<support::MacKey> read_key(const fs::path& path) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::nullopt;
    refuse(path, "MAC key " + quoted(path) + ": " +
                     (errno == ELOOP ? std::string("is a symlink, expected a file")
                                     : std::string(std::strerror(errno))));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    refuse(path, "MAC key " + quoted(path) + ": fstat: " + std::strerror(errno));
  }
  const bool regular = S_ISREG(st.st_mode);
  if (!regular || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0 ||
      st.st_size != static_cast<off_t>(support::kMacKeyBytes)) {
    refuse(path, "MAC key " + quoted(path) + " is " + (regular ? "a file" : "not a regular file") +
                     " of " + std::to_string(st.st_size) + " bytes " + found(st) +
                     ", expected a file of " + std::to_string(support::kMacKeyBytes) +
                     " bytes owned by this user (uid " + std::to_string(::geteuid()) +
                     ") with mode 0600; remove it to have a new key made (every entry is then "
                     "recompiled)");
  }
  support::MacKey key{};
  size_t filled = 0;
  while (filled < key.size()) {
    const ssize_t n = ::read(fd.get(), key.data() + filled, key.size() - filled);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      support::secure_zero(key);
      refuse(path, "MAC key " + quoted(path) +
                       ": read: " + (n < 0 ? std::strerror(errno) : "shorter than its size"));
    }
    filled += static_cast<size_t>(n);
  }
  return key;
}

}  // namespace

fs::path open_cache_dir(const fs::path& dir) {
  std::error_code ec;
  const fs::path absolute = fs::absolute(dir, ec);
  if (ec) refuse(dir, quoted(dir) + ": " + ec.message());
  // Resolved one component at a time with lstat, so each directory and
  // symlink on the way is checked before anything below it is trusted.
  std::vector<fs::path> rest(absolute.begin(), absolute.end());
  std::reverse(rest.begin(), rest.end());  // the next component last
  fs::path at = rest.back();               // the root, "/"
  rest.pop_back();
  int links = 0;
  struct stat st {};
  if (::lstat(at.c_str(), &st) != 0) refuse(at, quoted(at) + ": " + std::strerror(errno));
  while (!rest.empty()) {
    const fs::path name = rest.back();
    rest.pop_back();
    if (name.empty() || name == ".") continue;
    if (name == "..") {
      at = at.parent_path();  // `at` has no symlinks: its parent is the real one
      if (::lstat(at.c_str(), &st) != 0) refuse(at, quoted(at) + ": " + std::strerror(errno));
      continue;
    }
    check_ancestor(at, st, absolute);
    const fs::path next = at / name;
    if (::lstat(next.c_str(), &st) != 0) {
      if (errno != ENOENT) refuse(next, quoted(next) + ": " + std::strerror(errno));
      // Another process may make it at the same time: either is fine, and
      // the lstat below checks what is there.
      if (::mkdir(next.c_str(), 0700) != 0 && errno != EEXIST) {
        refuse(next, "cannot create " + quoted(next) + ": " + std::strerror(errno));
      }
      if (::lstat(next.c_str(), &st) != 0) refuse(next, quoted(next) + ": " + std::strerror(errno));
    }
    if (S_ISLNK(st.st_mode)) {
      // A link the user (or root) made to a directory of their own is
      // fine; another user's link could point anywhere, later too.
      if (!owned_by_user_or_root(st)) {
        refuse(next, "symlink " + quoted(next) + " on the way to " + quoted(absolute) + " is " +
                         found(st) + ": expected one made by this user (uid " +
                         std::to_string(::geteuid()) + ") or root");
      }
      if (++links > kMaxSymlinks) refuse(next, quoted(next) + ": " + std::strerror(ELOOP));
      const fs::path target = fs::read_symlink(next, ec);
      if (ec) refuse(next, "cannot read symlink " + quoted(next) + ": " + ec.message());
      for (auto it = target.end(); it != target.begin();) rest.push_back(*--it);
      if (target.is_absolute()) {
        rest.pop_back();  // its root
        at = target.root_path();
        if (::lstat(at.c_str(), &st) != 0) refuse(at, quoted(at) + ": " + std::strerror(errno));
      } else if (::lstat(at.c_str(), &st) != 0) {
        refuse(at, quoted(at) + ": " + std::strerror(errno));
      }
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      refuse(next, quoted(next) + " on the way to " + quoted(absolute) + " is not a directory");
    }
    at = next;
  }
  check_cache(at, st);
  return at;
}

bool make_cache_subdir(const fs::path& path) noexcept {
  if (::mkdir(path.c_str(), 0700) == 0) return true;
  struct stat st {};
  return errno == EEXIST && ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

support::MacKey load_cache_key(const fs::path& dir) {
  const fs::path path = dir / kMacKeyFile;
  if (std::optional<support::MacKey> key = read_key(path)) return *key;
  try {
    support::MacKey fresh = support::mac_generate_key();
    // Whoever links first wins; everyone then reads the winner's key.
    support::create_file_atomic(
        path, std::string_view(reinterpret_cast<const char*>(fresh.data()), fresh.size()),
        support::FileMode::owner_only);
    support::secure_zero(fresh);
  } catch (const support::FileError& e) {
    refuse(path, "cannot make the MAC key " + quoted(path) + ": " + e.reason());
  } catch (const support::CryptoError& e) {
    throw Error(ErrorCode::internal,
                "kiln: JIT cache: cannot make a MAC key: " + std::string(e.what()));
  }
  if (std::optional<support::MacKey> key = read_key(path)) return *key;
  refuse(path, "MAC key " + quoted(path) + " vanished after it was made");
}

}  // namespace kiln::jit::detail
