// Profile recording (KILN_PROFILE_OUT, OpenOptions::profile_out): counts,
// per graph, each distinct tuple of symbol values its calls bound, and
// merges the counts into a .kprof file (kiln/profile_format.h) that the
// generator's --profile (PROFILE in add_precompiled_graphs) turns into
// static specializations.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <dlpack/dlpack.h>

#include "kiln/abi/kiln_package_generated.h"

namespace kiln::detail {

class ProfileRecorder {
 public:
  // A recorder into KILN_PROFILE_OUT when it is set and not empty (a
  // deployment turns recording on without a rebuild), else into
  // `requested`; nullptr when both are empty. A relative path is made
  // absolute now, so a later chdir does not move the file.
  static std::unique_ptr<ProfileRecorder> open(const std::filesystem::path& requested,
                                               const fb::Manifest& manifest);

  ProfileRecorder(std::filesystem::path path, const fb::Manifest& manifest);
  ~ProfileRecorder();

  // Counts one call of `entry`'s graph (inputs then outputs, validated). A
  // call whose shapes contradict the signature is not counted. Thread-safe.
  void record(const fb::GraphEntry& entry, const DLTensor* const* tensors);

  // Adds the counts so far to what the file holds, rewrites it atomically
  // (temp file and rename, under a lock file so concurrent writers queue),
  // and clears them. Throws Error(io), or Error(profile_malformed) when the
  // file is not a profile (it is left alone); either way the counts are kept
  // for the next write.
  void write();
  // write() for a destructor: a failure is reported on stderr, not thrown.
  void write_or_report() noexcept;

  const std::filesystem::path& path() const { return path_; }

 private:
  struct GraphCounts {
    const fb::GraphEntry* entry = nullptr;
    // The profile key's "<graph> <hash>", and the symbols in name order,
    // as the key lists them.
    std::string key_prefix;
    std::vector<uint32_t> symbols_by_name;
    std::mutex mutex;
    // Distinct tuples, sorted, each its symbol values then its count: one
    // flat array, so a call seen before is a binary search and no
    // allocation.
    std::vector<int64_t> rows;
  };

  GraphCounts* find(const fb::GraphEntry& entry);
  // Adds `count` calls of `tuple` to `rows` (`width` values a tuple).
  static void add(std::vector<int64_t>& rows, const int64_t* tuple, size_t width, int64_t count);

  std::filesystem::path path_;
  // Graphs whose names the format can hold (all of a generated package's),
  // in manifest order, which is sorted by name.
  std::vector<GraphCounts> graphs_;
  std::mutex write_mutex_;  // one write at a time per package
};

}  // namespace kiln::detail
