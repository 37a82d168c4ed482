#include "clang_build.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "disk_cache.h"
#include "kiln/jit/jit_error.h"
#include "kiln/support/file_io.h"
#include "kiln/support/process.h"
#include "kiln/support/tool_version.h"

namespace kiln::jit::detail {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kScratchPrefix = "kiln-jit-";

// The pid in a scratch directory's name "kiln-jit-<pid>-XXXXXX"; nullopt
// for any other name.
std::optional<pid_t> scratch_dir_pid(std::string_view name) {
  if (!name.starts_with(kScratchPrefix)) return std::nullopt;
  name.remove_prefix(kScratchPrefix.size());
  const size_t dash = name.find('-');
  if (dash == std::string_view::npos || name.size() - dash - 1 != 6) return std::nullopt;
  pid_t pid = 0;
  const auto [end, error] = std::from_chars(name.data(), name.data() + dash, pid);
  if (error != std::errc() || end != name.data() + dash || pid <= 0) return std::nullopt;
  return pid;
}

// Removes the scratch directory on every path out, so a failed compile
// leaves nothing behind; one a killed process left carries its pid for
// reclaim_scratch_dirs.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& graph) {
    std::string pattern = (fs::temp_directory_path() /
                           (std::string(kScratchPrefix) + std::to_string(::getpid()) + "-XXXXXX"))
                              .string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw JitCompileError(graph, "cannot create a scratch directory from '" + pattern + "'", -1,
                            "");
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The scratch directory is private and removed after the compile: no fsync.
void write_text(const fs::path& path, const std::string& text, const std::string& graph) {
  try {
    support::write_file_atomic(path, text, support::Durability::unsynced);
  } catch (const support::FileError& e) {
    throw JitCompileError(graph, e.what(), -1, "");
  }
}

support::ProcessResult run(const std::vector<std::string>& argv, const std::string& graph) {
  try {
    return support::run_process(argv);
  } catch (const support::ProcessError& e) {
    // The compiler is missing or not executable, or its end was lost.
    throw JitCompileError(graph, e.what(), -1, "");
  }
}

}  // namespace

size_t reclaim_scratch_dirs(std::chrono::seconds min_age) {
  size_t removed = 0;
  std::error_code ec;
  const fs::path temp = fs::temp_directory_path(ec);
  if (ec) return 0;
  const auto now = std::chrono::system_clock::now();
  for (auto it = fs::directory_iterator(temp, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::optional<pid_t> pid = scratch_dir_pid(it->path().filename().string());
    if (!pid) continue;
    struct stat st {};
    // lstat: a symlink of that name is not a scratch directory.
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
      continue;
    }
    const auto modified = std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec);
    if (now - modified < min_age) continue;
    if (::kill(*pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to ask
    std::error_code remove_ec;
    if (fs::remove_all(it->path(), remove_ec) > 0 && !remove_ec) ++removed;
  }
  return removed;
}

std::string clang_identity(const std::string& cxx, const std::string& graph) {
  try {
    return support::tool_version(cxx, support::VersionLine::first);
  } catch (const support::ProcessError& e) {
    throw JitCompileError(graph, e.what(), -1, "");
  } catch (const support::ToolVersionError& e) {
    throw JitCompileError(graph, e.problem(), e.exit_code(), e.output());
  }
}

std::vector<std::byte> build_shared_object(const std::string& cxx,
                                           const std::vector<std::string>& flags,
                                           const std::vector<compiler::CpuKernel>& kernels,
                                           const std::string& graph) {
  const ScratchDir scratch(graph);
  std::vector<std::string> argv{cxx};
  argv.insert(argv.end(), flags.begin(), flags.end());
  const fs::path abi = scratch.path() / "kiln_cpu_abi.cpp";
  write_text(abi, compiler::cpu_abi_source(), graph);
  argv.push_back(abi.string());
  for (const compiler::CpuKernel& k : kernels) {
    const fs::path source = scratch.path() / (k.entry + ".cpp");
    write_text(source, k.source, graph);
    argv.push_back(source.string());
  }
  const fs::path object = scratch.path() / "kernels.so";
  // The same link line as the generator's CPU libraries.
  for (const char* flag : {"-shared", "-o"}) argv.emplace_back(flag);
  argv.push_back(object.string());
  argv.emplace_back("-lmvec");
  argv.emplace_back("-lm");
  const support::ProcessResult r = run(argv, graph);
  if (r.exit_code != 0) {
    throw JitCompileError(
        graph, "'" + cxx + "' " + support::describe_exit(r.exit_code) + " (expected status 0)",
        r.exit_code, r.output);
  }
  std::optional<std::string> bytes;
  try {
    bytes = support::read_file(object, kMaxEntryBytes);  // the object becomes a cache entry
  } catch (const support::FileError& e) {
    throw JitCompileError(graph, e.what(), 0, r.output);
  }
  if (!bytes) {
    throw JitCompileError(
        graph,
        "'" + cxx + "' exited with status 0 but wrote no '" + object.filename().string() + "'", 0,
        r.output);
  }
  const std::string& object_bytes = *bytes;
  const auto* begin = reinterpret_cast<const std::byte*>(object_bytes.data());
  return {begin, begin + object_bytes.size()};
}

}  // namespace kiln::jit::detail
