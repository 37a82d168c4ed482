// Random graphs for differential testing (tests/unit/test_differential.cpp,
// tests/gpu/gpu_diff.cpp): from a seed, a valid graph of 1 to 50 ops built
// through the public graph API (kiln::trace), so it is what a user could
// write, with random ranks, odd and symbolic sizes and NumPy broadcasting.
//
// Every value carries bounds on its magnitude and on its worst-case error
// against the double-precision interpreter, and an op is only added where
// that bound stays within the tolerance of its dtype (docs/testing.md lists
// the rules). The outputs are compared within their own bounds, not the
// dtype's tolerance: a mismatch is then a bug, not float noise, and a kernel
// much less accurate than it should be fails.
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

// What the generator knows of one output, on every target: each element's
// |computed - interpreted| <= abs + rel * |interpreted|; `exact`: the kernels
// compute the interpreter's bits (integers, bools, and floats that only
// exact or correctly rounded ops of exact values produce).
struct ErrorBound {
  double abs = 0;
  double rel = 0;
  bool exact = true;
};

// A random graph and the error bound of each of its outputs (in the order
// of graph.outputs).
struct RandomGraph {
  kiln::ir::Graph graph;
  std::vector<ErrorBound> bounds;
};

// Throws kiln::TraceError if the graph API rejects what the generator built
// (a bug of one or the other).
RandomGraph random_graph(uint64_t seed, const RandomGraphOptions& options = {});

// `count` symbol assignments within the declared ranges (divisibility kept;
// the minimum, the maximum and hot values are favoured).
std::vector<kiln::ir::SymbolValues> random_sizes(const kiln::ir::Graph& g, uint64_t seed,
                                                 int count);

// "s0=5 s1=17" (empty for a graph without symbols).
std::string sizes_to_string(const kiln::ir::Graph& g, const kiln::ir::SymbolValues& values);

// The names of the op table's entries: every entry adds one op (or one
// composite) of the graph API.
std::vector<std::string> random_graph_entries();

// The largest difference compare_outputs allows for an element of dtype t
// whose interpreted value is `want`: 0 for an exact bound (the same bits),
// else abs + rel * |want|, but never below the floor
// 2 u(t) |want| + the smallest subnormal of t (u: the unit roundoff), that
// is one ulp of want: two correct roundings of nearby values may land on
// neighbouring values of t, which no correct kernel can avoid.
double allowed_error(const ErrorBound& bound, kiln::DType t, double want);

// Compares a call's outputs with the interpreter's, each element within
// its output's bound (allowed_error; integers and bools exactly). Returns
// "" when all match, else a line per output that does not: its worst
// element (index, got, want, the bound) and how many are out. `ratios`,
// when given, receives each output's largest |got - want| / allowed error
// (<= 1 passes; 0 for an exact output that matches).
std::string compare_outputs(const kiln::ir::Graph& g, const std::vector<ErrorBound>& bounds,
                            const std::vector<kiln::compiler::HostTensor>& got,
                            const std::vector<kiln::compiler::HostTensor>& want,
                            std::vector<double>* ratios = nullptr);
inline std::string compare_outputs(const RandomGraph& rg,
                                   const std::vector<kiln::compiler::HostTensor>& got,
                                   const std::vector<kiln::compiler::HostTensor>& want,
                                   std::vector<double>* ratios = nullptr) {
  return compare_outputs(rg.graph, rg.bounds, got, want, ratios);
}

// What a failure prints: the seed and how to run it alone, the target, the
// sizes, the mismatch and the graph.
std::string failure_report(uint64_t seed, const std::string& target, const kiln::ir::Graph& g,
                           const kiln::ir::SymbolValues& sizes, const std::string& mismatch);

// KILN_DIFF_SEEDS="start:count" (or "seed"), else [default_start,
// default_start + default_count). Throws std::invalid_argument on a bad value.
std::vector<uint64_t> seeds_from_env(uint64_t default_start, uint64_t default_count);

}  // namespace kiln_test
