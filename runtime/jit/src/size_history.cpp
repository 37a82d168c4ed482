#include "size_history.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "cache_dir.h"

namespace kiln::jit::detail {
namespace fs = std::filesystem;

SizeHistory::SizeHistory(const fs::path& dir, const std::string& graph_hash)
    : path_(dir / "sizes" / (graph_hash + ".txt")) {}

std::vector<std::vector<int64_t>> SizeHistory::load(size_t symbols) const {
  std::vector<std::vector<int64_t>> sizes(symbols);
  std::ifstream in(path_);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    size_t symbol = 0;
    int64_t size = 0;
    std::string rest;
    if (!(fields >> symbol >> size) || (fields >> rest) || symbol >= symbols || size < 0) continue;
    std::vector<int64_t>& seen = sizes[symbol];
    if (std::find(seen.begin(), seen.end(), size) == seen.end()) seen.push_back(size);
  }
  return sizes;
}

void SizeHistory::append(size_t symbol, int64_t size) const {
  if (!make_cache_subdir(path_.parent_path())) return;
  const int fd =
      ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const std::string line = std::to_string(symbol) + " " + std::to_string(size) + "\n";
  [[maybe_unused]] const ssize_t written = ::write(fd, line.data(), line.size());
  ::close(fd);
}

}  // namespace kiln::jit::detail
