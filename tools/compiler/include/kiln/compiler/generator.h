// The build-time generator: from traced graphs and a list of targets, lower
// every specialization, build the kernels through ninja, and write the
// package plus the sources of the library that embeds it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "kiln/compiler/ir.h"

namespace kiln::compiler {

struct GeneratorOptions {
  std::string name;                  // library name: files are <name>.kiln, <name>.h, ...
  std::string cpp_namespace;         // namespace of the generated header
  std::vector<std::string> targets;  // "cpu:x86-64", "cpu:x86-64-v3", "cuda:sm_90", ...
  std::filesystem::path out_dir;
  std::filesystem::path work_dir;
  std::string cxx = "clang++";
  std::string cxx_launcher;
  std::string nvcc = "nvcc";
  std::string cuda_launcher;
  std::string ninja = "ninja";
  int jobs = 0;
  std::string tag;  // user tag, part of every key
  // .kprof files (--profile): each recorded shape that fits its graph
  // becomes a static specialization (kiln/compiler/profile.h).
  std::vector<std::filesystem::path> profiles;
  // false (--no-general): a graph with symbols gets only its static
  // specializations (hot values, profiled shapes); every other shape misses,
  // for the fallback JIT to compile, or a RecompileError under
  // fail_on_recompile. A graph with none of them has no specialization.
  bool general = true;
};

struct GeneratorSummary {
  std::filesystem::path package;
  size_t graphs = 0;
  size_t specializations = 0;
  size_t kernels = 0;
  uint64_t package_bytes = 0;
  // What the build skipped and why (profiled shapes that do not fit), one
  // line each; generator_main prints them as warnings.
  std::vector<std::string> warnings;
};

// A target named on the command line, parsed.
struct TargetSpec {
  std::string name;  // "cpu:x86-64-v3"
  bool cuda = false;
  std::string arch;  // "x86-64-v3", "sm_90"
};
// Throws std::invalid_argument naming the bad entry.
TargetSpec parse_target(const std::string& name);

// The specializations a graph gets: one static per combination of hot values
// and one per `profiled` tuple (whole tuples, one value per symbol, already
// checked against the declarations: read_profiled_shapes()) that is not
// among them, most specific first (more fixed symbols first, hot before
// profiled among equals), then the general one unless `general` is false (a
// graph without symbols keeps its one, fully static, specialization). Each
// entry has one value per symbol, -1 for dynamic.
std::vector<ir::SymbolValues> enumerate_specializations(
    const ir::Graph& g, const std::vector<ir::SymbolValues>& profiled = {}, bool general = true);
std::string specialization_name(const ir::Graph& g, const ir::SymbolValues& values);

GeneratorSummary run_generator(const GeneratorOptions& options,
                               const std::vector<ir::Graph>& graphs);

// Parses the generator's command line (see tools/kiln-gen) and runs it on
// every registered graph; returns the process exit code.
int generator_main(int argc, char** argv);

}  // namespace kiln::compiler
