// Writes build.ninja for the generated kernels and runs ninja as a
// subprocess, so kernels compile in parallel and unchanged ones are not
// rebuilt.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln::compiler {

// A kernel failed to compile: names the source file and carries the
// compiler's output.
class CompileError : public std::runtime_error {
 public:
  CompileError(const std::string& message, std::string source_file, std::string compiler_output);
  const std::string& source_file() const { return source_file_; }
  const std::string& compiler_output() const { return compiler_output_; }

 private:
  std::string source_file_;
  std::string compiler_output_;
};

struct SourceFile {
  std::string name;  // file name inside the library's directory, e.g. "kiln_rmsnorm_3fa2_k0.cpp"
  std::string contents;
};

struct SharedLibraryBuild {
  std::string name;  // directory and output stem, e.g. "cpu-x86-64-v3"
  std::vector<SourceFile> sources;
  std::vector<std::string> cxx_flags;  // compile flags
  std::vector<std::string> link_flags;
};

struct NinjaBuildRequest {
  std::filesystem::path work_dir;
  std::string cxx;           // path to clang++
  std::string cxx_launcher;  // optional: ccache, sccache, ...
  std::string ninja;         // path to ninja
  int jobs = 0;              // 0: ninja's default
  std::vector<SharedLibraryBuild> libraries;
};

// Writes each source only when its bytes changed (so ninja's mtime check
// skips unchanged kernels), writes build.ninja, runs ninja, and returns the
// path of each library's shared object in request order. Throws CompileError
// on a compiler failure and std::runtime_error when ninja cannot run.
std::vector<std::filesystem::path> run_ninja_build(const NinjaBuildRequest& request);

}  // namespace kiln::compiler
