// Writes build.ninja for generated kernels and runs ninja (see ninja_driver.h).
#include "kiln/compiler/ninja_driver.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <system_error>

#include "kiln/compiler/process.h"

namespace kiln::compiler {

namespace fs = std::filesystem;

CompileError::CompileError(const std::string& message, std::string source_file,
                           std::string compiler_output)
    : std::runtime_error(message),
      source_file_(std::move(source_file)),
      compiler_output_(std::move(compiler_output)) {}

namespace {

// A path in a ninja build line.
std::string ninja_path(const std::string& p) {
  std::string out;
  for (char c : p) {
    if (c == '$' || c == ' ' || c == ':') out += '$';
    out += c;
  }
  return out;
}

// A word in a ninja command, which ninja runs through /bin/sh.
std::string shell_word(const std::string& s) {
  const bool safe = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("_-+=./,:@%^").find(c) != std::string_view::npos;
  });
  std::string out;
  if (safe) {
    out = s;
  } else {
    out = "'";
    for (char c : s) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out += c;
      }
    }
    out += "'";
  }
  // Ninja expands $ in commands; escape it.
  std::string esc;
  for (char c : out) {
    if (c == '$') esc += '$';
    esc += c;
  }
  return esc;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + shell_word(w);
  return out;
}

std::string read_file_or_empty(const fs::path& p, bool* exists) {
  std::ifstream in(p, std::ios::binary);
  *exists = static_cast<bool>(in);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes only when the bytes differ, through a temporary and a rename, so
// ninja's mtime check sees only real changes.
void write_if_changed(const fs::path& p, const std::string& contents) {
  bool exists = false;
  if (read_file_or_empty(p, &exists) == contents && exists) return;
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("kiln: cannot write " + tmp.string());
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    if (!out) throw std::runtime_error("kiln: cannot write " + tmp.string());
  }
  fs::rename(tmp, p);
}

bool is_simple_name(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\n') == std::string::npos && s.find('\0') == std::string::npos;
}

std::string object_name(const std::string& source) {
  const fs::path p(source);
  return p.stem().string() + ".o";
}

bool is_source_name(const std::string& f) {
  for (const char* ext : {".cpp", ".cc", ".cxx", ".c"}) {
    const std::string e = ext;
    if (f.size() > e.size() && f.compare(f.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Removes objects (and sources) of a library directory that the request no
// longer lists.
void remove_stale(const fs::path& dir, const std::set<std::string>& keep) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    const std::string f = entry.path().filename().string();
    if (keep.count(f)) continue;
    if (ends_with(f, ".o") || ends_with(f, ".o.d") || ends_with(f, ".tmp") || is_source_name(f)) {
      fs::remove(entry.path(), ec);
    }
  }
}

struct FailedStep {
  std::string output;       // the ninja output path that failed
  std::string diagnostics;  // what the command printed
};

// "[3/10] CXX ...": ninja's progress line (the default NINJA_STATUS).
bool is_status_line(const std::string& line) {
  if (line.empty() || line[0] != '[') return false;
  size_t i = 1;
  auto digits = [&] {
    const size_t start = i;
    while (i < line.size() && std::isdigit(static_cast<unsigned char>(line[i]))) ++i;
    return i > start;
  };
  if (!digits() || i >= line.size() || line[i] != '/') return false;
  ++i;
  if (!digits()) return false;
  return line.compare(i, 2, "] ") == 0;
}

// Ninja prints "FAILED: <outputs>", the command, then its output.
std::vector<FailedStep> parse_failures(const std::string& log) {
  std::vector<FailedStep> out;
  std::istringstream in(log);
  std::string line;
  FailedStep* cur = nullptr;
  bool skip_command = false;
  while (std::getline(in, line)) {
    if (line.rfind("FAILED: ", 0) == 0) {
      out.push_back({});
      cur = &out.back();
      std::string rest = line.substr(8);
      // First output (paths with spaces are not generated by Kiln).
      const size_t sp = rest.find(' ');
      cur->output = rest.substr(0, sp);
      skip_command = true;
      continue;
    }
    if (cur == nullptr) continue;
    if (line.rfind("ninja: ", 0) == 0 || is_status_line(line)) {
      cur = nullptr;
      continue;
    }
    if (skip_command) {
      skip_command = false;
      continue;
    }
    cur->diagnostics += line + "\n";
  }
  return out;
}

}  // namespace

std::vector<fs::path> run_ninja_build(const NinjaBuildRequest& request) {
  if (request.work_dir.empty())
    throw std::invalid_argument("kiln: run_ninja_build needs a work_dir");
  const fs::path work = fs::absolute(request.work_dir);
  fs::create_directories(work);
  const std::string cxx = request.cxx.empty() ? "clang++" : request.cxx;
  const std::string ninja = request.ninja.empty() ? "ninja" : request.ninja;

  std::ostringstream nf;
  nf << "# Generated by Kiln (run_ninja_build); rewritten on every build.\n";
  nf << "ninja_required_version = 1.5\n\n";
  nf << "cxx = " << shell_word(cxx) << "\n";
  nf << "launcher = " << (request.cxx_launcher.empty() ? "" : shell_word(request.cxx_launcher))
     << "\n\n";
  nf << "rule cxx\n"
        "  command = $launcher $cxx $flags -MD -MF $out.d -c $in -o $out\n"
        "  deps = gcc\n"
        "  depfile = $out.d\n"
        "  description = CXX $out\n\n";
  nf << "rule link\n"
        "  command = $cxx -o $out $in $ldflags\n"
        "  description = LINK $out\n\n";

  std::map<std::string, std::string> object_to_source;  // ninja path -> absolute source path
  std::map<std::string, std::string> so_to_library;
  std::vector<fs::path> results;
  std::set<std::string> lib_names;
  std::vector<std::string> defaults;
  for (size_t li = 0; li < request.libraries.size(); ++li) {
    const SharedLibraryBuild& lib = request.libraries[li];
    if (!is_simple_name(lib.name))
      throw std::invalid_argument("kiln: bad library name '" + lib.name + "'");
    if (!lib_names.insert(lib.name).second) {
      throw std::invalid_argument("kiln: library '" + lib.name + "' listed twice");
    }
    const fs::path dir = work / lib.name;
    fs::create_directories(dir);
    std::set<std::string> keep;
    std::set<std::string> objects;
    for (const SourceFile& src : lib.sources) {
      if (!is_simple_name(src.name) || !is_source_name(src.name)) {
        throw std::invalid_argument("kiln: bad source name '" + src.name + "' in library '" +
                                    lib.name + "'");
      }
      const std::string obj = object_name(src.name);
      if (!keep.insert(src.name).second || !objects.insert(obj).second) {
        throw std::invalid_argument("kiln: source '" + src.name +
                                    "' clashes with another in library '" + lib.name + "'");
      }
      keep.insert(obj);
      write_if_changed(dir / src.name, src.contents);
    }
    remove_stale(dir, keep);

    nf << "# library " << lib.name << "\n";
    nf << "flags_" << li << " = " << join_words(lib.cxx_flags) << "\n";
    nf << "ldflags_" << li << " = " << join_words(lib.link_flags) << "\n";
    std::string objs;
    for (const SourceFile& src : lib.sources) {
      const std::string obj = lib.name + "/" + object_name(src.name);
      const std::string in = lib.name + "/" + src.name;
      nf << "build " << ninja_path(obj) << ": cxx " << ninja_path(in) << "\n";
      nf << "  flags = $flags_" << li << "\n";
      objs += " " + ninja_path(obj);
      object_to_source[obj] = (dir / src.name).string();
    }
    const std::string so = lib.name + "/" + lib.name + ".so";
    nf << "build " << ninja_path(so) << ": link" << objs << "\n";
    nf << "  ldflags = $ldflags_" << li << "\n\n";
    so_to_library[so] = lib.name;
    defaults.push_back(ninja_path(so));
    results.push_back(dir / (lib.name + ".so"));
  }
  if (!defaults.empty()) {
    nf << "default";
    for (const auto& d : defaults) nf << " " << d;
    nf << "\n";
  }
  write_if_changed(work / "build.ninja", nf.str());
  if (request.libraries.empty()) return results;

  std::vector<std::string> argv = {ninja, "-C", work.string()};
  if (request.jobs > 0) {
    argv.emplace_back("-j");
    argv.push_back(std::to_string(request.jobs));
  }
  const ProcessResult r = run_process(argv);
  if (r.exit_code == 0) return results;

  const std::vector<FailedStep> failures = parse_failures(r.output);
  if (failures.empty()) {
    throw std::runtime_error("kiln: ninja failed (exit " + std::to_string(r.exit_code) + ") in " +
                             work.string() + ":\n" + r.output);
  }
  const FailedStep& f = failures.front();
  std::string file;
  std::string what;
  if (auto it = object_to_source.find(f.output); it != object_to_source.end()) {
    file = it->second;
    what = "kiln: compiling " + file + " failed";
  } else if (auto so = so_to_library.find(f.output); so != so_to_library.end()) {
    file = (work / f.output).string();
    what = "kiln: linking " + file + " (library '" + so->second + "') failed";
  } else {
    file = (work / f.output).string();
    what = "kiln: building " + file + " failed";
  }
  if (failures.size() > 1) what += " (and " + std::to_string(failures.size() - 1) + " more)";
  throw CompileError(what + ":\n" + f.diagnostics, file, f.diagnostics);
}

}  // namespace kiln::compiler
