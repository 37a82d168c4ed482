// The `kiln` command line: inspect, verify and merge packages, look after
// the JIT cache.
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "commands.h"

namespace {

constexpr const char* kUsage =
    "usage: kiln <command> [options]\n"
    "\n"
    "commands:\n"
    "  inspect PKG [--json]   show a package's graphs, specializations, guards,\n"
    "                         kernels, blobs, targets and provenance\n"
    "  verify PKG             check a package fully (header, checksum, manifest,\n"
    "                         every blob's hash and decompression)\n"
    "  merge BASE DELTA... -o OUT\n"
    "                         fold delta packages (e.g. what the JIT compiled) into\n"
    "                         BASE and write OUT atomically; their graphs must be\n"
    "                         BASE's, specializations BASE has are skipped\n"
    "  cache stats|prune|clear [--dir DIR] [--max-size SIZE]\n"
    "                         the JIT's disk cache (default $KILN_CACHE_DIR, else\n"
    "                         $XDG_CACHE_HOME/kiln, else ~/.cache/kiln): its size;\n"
    "                         remove least recently used entries down to SIZE\n"
    "                         (\"500M\"; default $KILN_CACHE_MAX_SIZE); clear all\n"
    "\n"
    "options:\n"
    "  -o, --output OUT       merge: the package to write (may be BASE)\n"
    "  -h, --help             show this help\n"
    "\n"
    "exit status: 0 success, 1 the package failed, 2 usage error\n";

int usage_error(std::string_view message, std::string_view subject = {}) {
  std::fprintf(stderr, "kiln: %.*s%s%.*s\n\n%s", static_cast<int>(message.size()), message.data(),
               subject.empty() ? "" : ": ", static_cast<int>(subject.size()), subject.data(),
               kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::string_view arg : args) {
    if (arg == "-h" || arg == "--help" || arg == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  if (args.empty()) return usage_error("no command given");
  const std::string_view command = args[0];
  std::vector<std::string_view> positional;
  bool json = false;
  std::string_view cache_dir;
  std::optional<std::string_view> max_size;
  std::optional<std::string_view> output;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--json" && command == "inspect") {
      json = true;
    } else if ((args[i] == "--dir" || args[i] == "--max-size") && command == "cache") {
      if (i + 1 == args.size()) return usage_error("expected a value after", args[i]);
      (args[i] == "--dir" ? cache_dir : max_size.emplace()) = args[i + 1];
      ++i;
    } else if ((args[i] == "-o" || args[i] == "--output") && command == "merge") {
      if (i + 1 == args.size()) return usage_error("expected a path after", args[i]);
      if (output) return usage_error("more than one output given", args[i + 1]);
      output = args[++i];
    } else if (args[i].starts_with("-") && args[i].size() > 1) {
      return usage_error("unknown option for this command", args[i]);
    } else {
      positional.push_back(args[i]);
    }
  }
  if (command == "inspect" || command == "verify") {
    if (positional.size() != 1) return usage_error("expected exactly one package path");
    const std::filesystem::path path(positional[0]);
    return command == "inspect" ? kiln::cli::run_inspect(path, json) : kiln::cli::run_verify(path);
  }
  if (command == "merge") {
    if (!output) return usage_error("merge: expected -o OUT");
    if (positional.size() < 2) return usage_error("merge: expected a base and at least one delta");
    const std::vector<std::filesystem::path> deltas(positional.begin() + 1, positional.end());
    return kiln::cli::run_merge(std::filesystem::path(positional[0]), deltas,
                                std::filesystem::path(*output));
  }
  if (command == "cache") {
    if (positional.size() != 1) return usage_error("expected one of stats, prune, clear");
    return kiln::cli::run_cache(positional[0], std::filesystem::path(cache_dir), max_size);
  }
  return usage_error("unknown command", command);
}
