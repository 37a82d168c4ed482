// Whole-file reads and atomic writes for everything the compiler writes:
// kernel sources, build.ninja, packages and the generated library sources.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::compiler {

// The file's bytes, or nullopt when it cannot be opened.
std::optional<std::string> read_file(const std::filesystem::path& path);

// Writes to a temporary name unique to this process and call, flushes it to
// disk, then renames it over `path`: a reader (or a concurrent writer) sees
// the old file or the new one, never a part. Throws std::runtime_error
// naming the path and the failed step.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// As write_file_atomic, but leaves the file alone (mtime included) when it
// already holds these bytes, so mtime-based builds (ninja, CMake) see only
// real changes. Returns whether it wrote.
bool write_file_if_changed(const std::filesystem::path& path, std::string_view bytes);

}  // namespace kiln::compiler
