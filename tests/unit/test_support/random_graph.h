// Random graphs for differential testing (tests/unit/test_differential.cpp,
// tests/gpu/gpu_diff.cpp): from a seed, a valid graph of 1 to 50 ops built
// through the public graph API (kiln::trace), so it is what a user could
// write, with random ranks, odd and symbolic sizes and NumPy broadcasting.
//
// Every value carries bounds on its magnitude and on its error against the
// double-precision interpreter, and an op is only added where the result
// stays within the tolerance of its dtype (docs/testing.md lists the rules):
// a mismatch is then a bug, not float noise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/compiler/interpreter.h"
#include "kiln/compiler/ir.h"

namespace kiln_test {

struct RandomGraphOptions {
  int max_ops = 50;  // ops drawn from the op table (the guards they need count too)
  // Largest element count of any tensor with every symbol at its maximum.
  int64_t max_numel = 4096;
  // Some target divides and takes rsqrt approximately (CUDA's __fdividef,
  // rsqrtf): those are then not exact, so comparisons never read them. On by
  // default, so a seed gives the same graph for every target (a failure on
  // the GPU reruns on the CPU); false lets a CPU-only run compare quotients
  // and square roots too.
  bool device_math = true;
};

// "rg_<seed>".
std::string random_graph_name(uint64_t seed);

// Throws kiln::TraceError if the graph API rejects what the generator built
// (a bug of one or the other).
kiln::ir::Graph random_graph(uint64_t seed, const RandomGraphOptions& options = {});

// `count` symbol assignments within the declared ranges (divisibility kept;
// the minimum, the maximum and hot values are favoured).
std::vector<kiln::ir::SymbolValues> random_sizes(const kiln::ir::Graph& g, uint64_t seed,
                                                 int count);

// "s0=5 s1=17" (empty for a graph without symbols).
std::string sizes_to_string(const kiln::ir::Graph& g, const kiln::ir::SymbolValues& values);

// The names of the op table's entries: every entry adds one op (or one
// composite) of the graph API.
std::vector<std::string> random_graph_entries();

// Compares a call's outputs with the interpreter's, each within
// kiln::compiler::tolerance_for(its dtype) (integers and bools exactly).
// Returns "" when all match, else a line per output that does not: its
// worst element (index, got, want, tolerance) and how many are out.
// `worst_ratio`, when given, receives the largest |got - want| / tolerance
// over every element (<= 1 passes).
std::string compare_outputs(const kiln::ir::Graph& g,
                            const std::vector<kiln::compiler::HostTensor>& got,
                            const std::vector<kiln::compiler::HostTensor>& want,
                            double* worst_ratio = nullptr);

// What a failure prints: the seed and how to run it alone, the target, the
// sizes, the mismatch and the graph.
std::string failure_report(uint64_t seed, const std::string& target, const kiln::ir::Graph& g,
                           const kiln::ir::SymbolValues& sizes, const std::string& mismatch);

// KILN_DIFF_SEEDS="start:count" (or "seed"), else [default_start,
// default_start + default_count). Throws std::invalid_argument on a bad value.
std::vector<uint64_t> seeds_from_env(uint64_t default_start, uint64_t default_count);

}  // namespace kiln_test
