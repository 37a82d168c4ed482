// The sizes each symbol of a graph got static specializations for, kept in
// the cache directory so that automatic dynamic spans processes: a process
// that sees a third size of a symbol compiles it dynamic at once, even when
// the first two were seen by other processes (as PyTorch's automatic-dynamic
// profile does). One text file per graph structure, `<dir>/sizes/<hash>.txt`,
// a line `<symbol index> <size>` per size; lines are appended with one
// write(O_APPEND), so concurrent processes interleave whole lines.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::jit::detail {

class SizeHistory {
 public:
  SizeHistory(const std::filesystem::path& dir, const std::string& graph_hash);

  // Per symbol, the sizes recorded so far in file order (lines that do not
  // parse, or name a symbol beyond `symbols`, are skipped). Missing file:
  // none.
  std::vector<std::vector<int64_t>> load(size_t symbols) const;
  // Best effort: a directory that cannot be written loses the history,
  // never a compile.
  void append(size_t symbol, int64_t size) const;

 private:
  std::filesystem::path path_;
};

}  // namespace kiln::jit::detail
