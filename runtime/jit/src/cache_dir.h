// The rules a JIT cache directory must pass before the JIT runs code from
// it: it and every directory above it belong to this user (or root), none
// is writable by others (a sticky /tmp aside), and a symlink on the way was
// made by this user or root. Another user who could write any of them could
// plant code the JIT would load.
#pragma once

#include <filesystem>

#include "kiln/support/crypto.h"

namespace kiln::jit::detail {

// Creates `dir` where missing (each new directory 0700), then checks it as
// above. The directory itself must be this user's: one with group or other
// permissions but no write for them (an older Kiln made caches 0755) is set
// to 0700, with a line on stderr; one others may write is refused, since
// they may already have planted files in it. Returns the directory with
// its symlinks resolved, the path every later access uses. Throws
// CacheDirError naming the path, its owner and mode, and what to do.
std::filesystem::path open_cache_dir(const std::filesystem::path& dir);

// mkdir(`path`, 0700): a subdirectory of a checked cache directory (a
// fan-out directory, compilers/, sizes/). Returns whether a directory is
// there now, made by this call or found.
bool make_cache_subdir(const std::filesystem::path& path) noexcept;

// The file in a cache directory that holds its MAC key.
inline constexpr char kMacKeyFile[] = "entry-mac.key";

// The cache's MAC key (disk_cache.h), from <dir>/entry-mac.key: made on
// first use from the system's entropy, written 0600 and linked into place
// exclusively, so processes racing to make it all end up with the one that
// won. A key file that is a symlink, not this user's, readable or writable
// by others, or not exactly kMacKeyBytes long is refused, never replaced:
// CacheDirError. `dir` must have passed open_cache_dir.
support::MacKey load_cache_key(const std::filesystem::path& dir);

}  // namespace kiln::jit::detail
