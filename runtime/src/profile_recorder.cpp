#include "profile_recorder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "kiln/error.h"
#include "kiln/package_reader.h"
#include "kiln/profile_format.h"
#include "kiln/support/env.h"
#include "kiln/support/file_io.h"
#include "symbol_binding.h"
#include "text.h"

namespace kiln::detail {
namespace {

std::string_view view(const flatbuffers::String* s) { return {s->data(), s->size()}; }

class ProfileFile {
 public:
  explicit ProfileFile(const std::filesystem::path& path) : path_(path) {}

  [[noreturn]] void fail(std::string_view step) const {
    throw Error(ErrorCode::io, cat("kiln: cannot write profile '", path_.string(), "': ", step,
                                   ": ", std::strerror(errno)));
  }
  [[noreturn]] void fail(const support::FileError& e) const {
    throw Error(ErrorCode::io,
                cat("kiln: cannot write profile '", path_.string(), "': ", e.reason()));
  }

  // The lock file beside the profile, never replaced (the profile itself is,
  // by each rename), so every writer locks the same inode. It stays behind.
  void lock() {
    const std::string lock_path = path_.string() + ".lock";
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) fail(cat("open ", lock_path));
    while (::flock(lock_fd_, LOCK_EX) != 0) {
      if (errno != EINTR) fail(cat("flock ", lock_path));
    }
  }
  ~ProfileFile() {
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
  }

  // The file's bytes; empty when it does not exist yet.
  std::string read() const {
    try {
      return support::read_file(path_, profile::kMaxFileBytes).value_or("");
    } catch (const support::FileError& e) {
      fail(e);
    }
  }

  // A temp file in the same directory, renamed over the profile: a reader
  // sees the old file or the new one, never a part.
  void replace(const std::string& text) const {
    try {
      support::write_file_atomic(path_, text);
    } catch (const support::FileError& e) {
      fail(e);
    }
  }

 private:
  const std::filesystem::path& path_;
  int lock_fd_ = -1;
};

}  // namespace

std::unique_ptr<ProfileRecorder> ProfileRecorder::open(const std::filesystem::path& requested,
                                                       const fb::Manifest& manifest) {
  const std::optional<std::string_view> env = support::env_value("KILN_PROFILE_OUT");
  std::filesystem::path path = env ? std::filesystem::path(*env) : requested;
  if (path.empty()) return nullptr;
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  return std::make_unique<ProfileRecorder>(ec ? std::move(path) : std::move(absolute), manifest);
}

ProfileRecorder::ProfileRecorder(std::filesystem::path path, const fb::Manifest& manifest)
    : path_(std::move(path)) {
  std::vector<const fb::GraphEntry*> entries;
  if (manifest.graphs()) {
    for (const fb::GraphEntry* entry : *manifest.graphs()) {
      bool named = profile::is_name(view(entry->name()));
      if (entry->symbols()) {
        for (const fb::Symbol* s : *entry->symbols()) named &= profile::is_name(view(s->name()));
      }
      if (named) entries.push_back(entry);
    }
  }
  // Built in place: GraphCounts holds a mutex and never moves.
  graphs_ = std::vector<GraphCounts>(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    GraphCounts& g = graphs_[i];
    g.entry = entries[i];
    profile::StructureHash structure;
    if (const fb::Hash128* h = g.entry->structure_hash()) structure = {h->hi(), h->lo()};
    g.key_prefix = profile::key_prefix(view(g.entry->name()), structure);
    const uint32_t symbols = g.entry->symbols() ? g.entry->symbols()->size() : 0;
    for (uint32_t s = 0; s < symbols; ++s) {
      const std::string_view name = view(g.entry->symbols()->Get(s)->name());
      size_t at = g.symbols_by_name.size();
      while (at > 0 && name < view(g.entry->symbols()->Get(g.symbols_by_name[at - 1])->name())) {
        --at;
      }
      g.symbols_by_name.insert(g.symbols_by_name.begin() + static_cast<std::ptrdiff_t>(at), s);
    }
  }
}

ProfileRecorder::~ProfileRecorder() = default;

ProfileRecorder::GraphCounts* ProfileRecorder::find(const fb::GraphEntry& entry) {
  const std::string_view name = view(entry.name());
  size_t lo = 0, hi = graphs_.size();
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (view(graphs_[mid].entry->name()) < name) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < graphs_.size() && graphs_[lo].entry == &entry ? &graphs_[lo] : nullptr;
}

void ProfileRecorder::add(std::vector<int64_t>& rows, const int64_t* tuple, size_t width,
                          int64_t count) {
  const size_t stride = width + 1;
  size_t lo = 0, hi = rows.size() / stride;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    const int64_t* row = rows.data() + mid * stride;
    if (std::lexicographical_compare(row, row + width, tuple, tuple + width)) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  const size_t at = lo * stride;
  if (at == rows.size() || !std::equal(tuple, tuple + width, rows.data() + at)) {
    rows.insert(rows.begin() + static_cast<std::ptrdiff_t>(at), stride, 0);
    std::copy(tuple, tuple + width, rows.data() + at);
  }
  rows[at + width] += count;
}

void ProfileRecorder::record(const fb::GraphEntry& entry, const DLTensor* const* tensors) {
  GraphCounts* graph = find(entry);
  int64_t values[kMaxSymbols];
  if (graph == nullptr || !bind_symbols(entry, tensors, values)) return;
  const std::lock_guard<std::mutex> lock(graph->mutex);
  add(graph->rows, values, graph->symbols_by_name.size(), 1);
}

void ProfileRecorder::write() {
  const std::lock_guard<std::mutex> write_lock(write_mutex_);
  std::vector<std::vector<int64_t>> taken(graphs_.size());
  for (size_t g = 0; g < graphs_.size(); ++g) {
    const std::lock_guard<std::mutex> lock(graphs_[g].mutex);
    taken[g].swap(graphs_[g].rows);
  }
  // Keys sort as text, not as the rows' numbers ("n=10" before "n=9"):
  // gathered, then sorted once.
  std::vector<profile::Line> lines;
  for (size_t g = 0; g < graphs_.size(); ++g) {
    const GraphCounts& graph = graphs_[g];
    const size_t width = graph.symbols_by_name.size();
    for (size_t row = 0; row < taken[g].size(); row += width + 1) {
      std::string key = graph.key_prefix;
      for (const uint32_t s : graph.symbols_by_name) {
        profile::append_value(key, view(graph.entry->symbols()->Get(s)->name()), taken[g][row + s]);
      }
      lines.push_back({std::move(key), static_cast<uint64_t>(taken[g][row + width]), 0});
    }
  }
  const profile::Profile recorded = profile::Profile::from_lines(std::move(lines));
  if (recorded.empty()) return;
  try {
    ProfileFile file(path_);
    file.lock();
    profile::Profile merged;
    try {
      merged = profile::parse(file.read(), path_.string());
    } catch (const profile::FormatError& e) {
      throw Error(ErrorCode::profile_malformed, cat(e.what(), "; the file was left as it is"));
    }
    merged.merge(recorded);
    file.replace(profile::serialize(merged));
  } catch (...) {
    // Nothing reached the file: the counts go back, for a later write.
    for (size_t g = 0; g < graphs_.size(); ++g) {
      const std::lock_guard<std::mutex> lock(graphs_[g].mutex);
      const size_t width = graphs_[g].symbols_by_name.size();
      for (size_t row = 0; row < taken[g].size(); row += width + 1) {
        add(graphs_[g].rows, taken[g].data() + row, width, taken[g][row + width]);
      }
    }
    throw;
  }
}

void ProfileRecorder::write_or_report() noexcept {
  try {
    write();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", cat(e.what(), " (recorded profile lost)").c_str());
  }
}

}  // namespace kiln::detail
