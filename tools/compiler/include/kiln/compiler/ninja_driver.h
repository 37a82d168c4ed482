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

// CUDA sources compiled one by one: a cubin each (nvcc -cubin, with ptxas's
// -v report kept beside it as <stem>.ptxas), and with `ptx` also PTX, which
// the cubin is then assembled from (the front end runs once per kernel).
struct CudaBuild {
  std::string name;                 // directory, e.g. "cuda-sm_90"
  std::vector<SourceFile> sources;  // "<kernel>.cu"
  std::vector<std::string> nvcc_flags;
  bool ptx = false;
};

struct NinjaBuildRequest {
  std::filesystem::path work_dir;
  std::string cxx;           // path to clang++
  std::string cxx_launcher;  // optional: ccache, sccache, ...
  std::string nvcc;          // path to nvcc (needed when `cuda` is not empty)
  std::string cuda_launcher;
  std::string ninja;  // path to ninja
  int jobs = 0;       // 0: ninja's default
  std::vector<SharedLibraryBuild> libraries;
  std::vector<CudaBuild> cuda;
};

// Writes each source only when its bytes changed (so ninja's mtime check
// skips unchanged kernels), writes build.ninja, runs ninja, and returns the
// path of each library's shared object in request order. CUDA outputs are at
// cuda_output(). Throws CompileError on a compiler failure and
// std::runtime_error when ninja cannot run.
std::vector<std::filesystem::path> run_ninja_build(const NinjaBuildRequest& request);

// Where run_ninja_build puts the cubin (or, with ptx, the PTX) of
// request.cuda[build].sources[source].
std::filesystem::path cuda_output(const NinjaBuildRequest& request, size_t build, size_t source,
                                  bool ptx);

}  // namespace kiln::compiler
