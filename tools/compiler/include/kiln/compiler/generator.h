// The build-time generator: from traced graphs and a list of targets, lower
// every specialization, build the kernels through ninja, and write the
// package plus the sources of the library that embeds it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kiln/compiler/ir.h"

namespace kiln::compiler {

// Op budgets (ops of one graph, inputs not counted), from a chain of `sin`
// (one fused kernel, the worst case) on a 2-core VM, 2026-12-07: nvcc 13
// -O3 -ptx for sm_90 took 54 s and 1.2 GB for 1,000 ops, 235 s and 3.9 GB
// for 2,000 (the other core busy), and 5,000 ops passed 3.3 GB in 81 s
// before it was stopped; ptxas adds 19 s per cubin at 1,000, and a general
// specialization is up to four kernels. The generator with clang++ -O3
// built one CPU level in 3.2 s for 10,000 ops and 34 s (0.7 GB) for 50,000.
inline constexpr int64_t kDefaultCudaOpBudget = 1000;
inline constexpr int64_t kDefaultCpuOpBudget = 50000;

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
  // --graph-targets NAME=T1,T2 (GRAPH_TARGETS): graph NAME is built only for
  // these targets, each one of `targets`. Combined with the targets the
  // declaration names (kiln::graph_targets): a graph gets the targets both allow.
  std::map<std::string, std::vector<std::string>> graph_targets;
  // --op-budget cpu=N / cuda=N: a graph with more ops than its target kind's
  // budget is left off that target, with a warning, unless GRAPH_TARGETS or
  // its declaration names the target (then it is built, also with a warning).
  // 0: no budget.
  int64_t cpu_op_budget = kDefaultCpuOpBudget;
  int64_t cuda_op_budget = kDefaultCudaOpBudget;
  // --dry-run: trace, choose targets and lower, but build and write nothing
  // (no compiler runs): the summary says what a build would make.
  bool dry_run = false;
  // --sign-key K.key (SIGN_KEY): sign the package with this secret key file
  // (kiln/support/key_file.h); read before anything is built, so a bad key
  // fails fast. Empty: the package is unsigned.
  std::filesystem::path sign_key;
};

struct GeneratorSummary {
  std::filesystem::path package;
  size_t graphs = 0;
  size_t specializations = 0;
  size_t kernels = 0;
  uint64_t package_bytes = 0;
  std::string signer_key_id;  // with GeneratorOptions::sign_key: its key id
  // What the build skipped and why (profiled shapes that do not fit, graphs
  // above a target's op budget), one line each; generator_main prints them
  // as warnings.
  std::vector<std::string> warnings;
  // Per graph, by name: its op count and the targets it is built for.
  struct GraphTargets {
    size_t ops = 0;
    std::vector<std::string> targets;
  };
  std::map<std::string, GraphTargets> graph_targets;
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

// A graph's ops: its nodes less its inputs.
size_t op_count(const ir::Graph& g);

GeneratorSummary run_generator(const GeneratorOptions& options,
                               const std::vector<ir::Graph>& graphs);

// Parses the generator's command line (see tools/kiln-gen) and runs it on
// every registered graph; returns the process exit code.
int generator_main(int argc, char** argv);

}  // namespace kiln::compiler
