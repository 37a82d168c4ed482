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

// The cache directory itself, reached and a directory: this user's, and
// closed to others' writes.
void check_owner(const fs::path& path, const struct stat& st) {
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
}

// Group and other bits cleared from a directory that passed check_owner.
void close_mode(const fs::path& path, const struct stat& st) {
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

constexpr size_t kKeyHexChars = 32;  // Hash128::hex()
constexpr std::string_view kTagSignature = "Signature: 8a477f597d28d172789f06886806bc55\n";
constexpr std::string_view kTagKilnLine = "# This file is a cache directory tag created by Kiln";

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool all_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Whether a name at the top of a cache directory is one Kiln writes there.
bool is_kiln_top_level_name(std::string_view name) {
  for (std::string_view known : {std::string_view(kCacheDirTag), std::string_view(kMacKeyFile),
                                 std::string_view(kCompilersDir), std::string_view(kSizesDir),
                                 std::string_view(kStatsFile), std::string_view(kStatsLockFile)}) {
    if (name == known) return true;
  }
  if (const std::optional<std::string_view> base = temp_file_base(name)) {
    return *base == kCacheDirTag || *base == kMacKeyFile || *base == kStatsFile;
  }
  return is_fanout_name(name);
}

// Marks `dir` Kiln's (see open_cache_dir).
void mark(const fs::path& dir) {
  if (has_kiln_tag(dir)) return;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!is_kiln_top_level_name(name)) {
      refuse(dir, quoted(dir) + " has no " + kCacheDirTag + " written by Kiln and holds '" + name +
                      "', which is not Kiln's: it is not a Kiln cache, and Kiln will not use (or "
                      "later prune) it; use an empty or new directory");
    }
  }
  if (ec) refuse(dir, "cannot list " + quoted(dir) + ": " + ec.message());
  const std::string tag = std::string(kTagSignature) + std::string(kTagKilnLine) +
                          " for its JIT's cache.\n"
                          "# For information about cache directory tags, see "
                          "https://bford.info/cachedir/\n";
  try {
    // A racing process may write it first: either tag is the same.
    support::create_file_atomic(dir / kCacheDirTag, tag, support::FileMode::owner_only);
  } catch (const support::FileError& e) {
    refuse(dir, "cannot mark " + quoted(dir) + " as Kiln's cache: " + e.reason());
  }
  if (!has_kiln_tag(dir)) {
    refuse(dir, quoted(dir / kCacheDirTag) + " is there, but not Kiln's: not a Kiln cache");
  }
}

// The key file's bytes, checked; nullopt when there is none yet.
std::optional<support::MacKey> read_key(const fs::path& path) {
  const support::FileDescriptor fd(
      ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
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
        throw CacheDirUnavailable("kiln: JIT cache directory: cannot create " + quoted(next) +
                                  ": " + std::strerror(errno));
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
  check_owner(at, st);
  mark(at);
  close_mode(at, st);
  return at;
}

std::optional<std::string_view> temp_file_base(std::string_view name) {
  // "<base>.tmp.<pid>.<n>": two runs of digits after the last ".tmp.".
  const size_t at = name.rfind(".tmp.");
  if (at == std::string_view::npos || at == 0) return std::nullopt;
  const std::string_view tail = name.substr(at + 5);
  const size_t dot = tail.find('.');
  if (dot == std::string_view::npos || !all_digits(tail.substr(0, dot)) ||
      !all_digits(tail.substr(dot + 1))) {
    return std::nullopt;
  }
  return name.substr(0, at);
}

bool is_fanout_name(std::string_view name) { return name.size() == 2 && all_hex(name); }

bool is_entry_name(std::string_view name) {
  return name.size() == kKeyHexChars + 5 && name.ends_with(".kjit") &&
         all_hex(name.substr(0, kKeyHexChars));
}

bool is_memo_name(std::string_view name) {
  return name.size() == kKeyHexChars + 4 && name.ends_with(".txt") &&
         all_hex(name.substr(0, kKeyHexChars));
}

bool is_size_history_name(std::string_view name) {
  return name.size() > 4 && name.ends_with(".txt");
}

bool has_kiln_tag(const fs::path& dir) {
  struct stat st {};
  const fs::path tag = dir / kCacheDirTag;
  // Read only when a plain file: a symlink or a fifo says nothing.
  if (::lstat(tag.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  const std::optional<std::string> text = support::read_file_if_readable(tag, 4096);
  return text && text->starts_with(kTagSignature) && text->find(kTagKilnLine) != std::string::npos;
}

bool require_kiln_cache(const fs::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 && errno == ENOENT) return false;
  if (!has_kiln_tag(dir)) {
    throw CacheDirError(dir, "kiln: not a Kiln cache: " + quoted(dir) + " has no " + kCacheDirTag +
                                 " written by Kiln; Kiln prunes and clears only the "
                                 "directories its JIT made");
  }
  return true;
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
