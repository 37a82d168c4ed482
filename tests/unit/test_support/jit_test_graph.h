// The graph the JIT tests compile, a package holding only its IR (every call
// misses), and a call on random inputs checked against the interpreter.
// Shared by test_jit_cpu and its child process, jit_cache_child.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "kiln/compiler/hash.h"
#include "kiln/compiler/interpreter.h"
#include "kiln/compiler/manifest_builder.h"
#include "kiln/compiler/package_writer.h"
#include "kiln/graph.h"
#include "kiln/runtime.h"
#include "random_call.h"

namespace kiln_test {

// Two outputs (layernorm and softmax): more than one kernel per compile.
inline kiln::Outputs jit_norms() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096});
  auto x = kiln::input("x", kiln::f32, {n, 37});
  auto w = kiln::input("w", kiln::f32, {37});
  auto b = kiln::input("b", kiln::f32, {37});
  return kiln::outputs(kiln::layernorm(x, w, b), kiln::softmax(x)).named({"ln", "sm"});
}

// The graph's IR and signature, a CPU target, no specialization: the state of
// a package asked for shapes it was never built for. Deterministic bytes, so
// processes building it agree on every cache key.
inline std::vector<uint8_t> ir_only_package(std::vector<kiln::ir::Graph> graphs) {
  kiln::fb::ManifestT m;
  auto target = std::make_unique<kiln::fb::TargetT>();
  target->name = "cpu:x86-64";
  target->device = kiln::fb::DeviceKind::Cpu;
  target->arch = "x86-64";
  m.targets.push_back(std::move(target));
  // Sorted by name, as the generator writes them: the reader looks graphs
  // up by key.
  std::sort(graphs.begin(), graphs.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const kiln::ir::Graph& g : graphs) {
    m.graphs.push_back(kiln::compiler::graph_entry(g, kiln::compiler::structure_hash(g)));
  }
  m.provenance = std::make_unique<kiln::fb::ProvenanceT>();
  m.provenance->kiln_version = "test";
  return kiln::compiler::write_package(std::move(m), {});
}

inline std::vector<uint8_t> ir_only_package(const kiln::ir::Graph& g) {
  return ir_only_package(std::vector<kiln::ir::Graph>{g});
}

// Calls `g` in `pkg` with n rows of random data; returns "" when every output
// matches the interpreter (whose outputs must not be all zeros), else what
// differed. Errors of the call propagate.
inline std::string call_and_compare(kiln::Package& pkg, const kiln::ir::Graph& g, int64_t n,
                                    uint64_t seed) {
  const RandomCall call(g, n, seed);
  pkg.graph(g.name).call(call.inputs(), call.outputs());
  const auto& want = call.want();
  std::string why;
  for (size_t i = 0; i < want.size(); ++i) {
    const auto got = call.got(i);
    bool any_nonzero = false;
    for (double v : want[i].values) any_nonzero |= v != 0;
    if (!any_nonzero) why += "output " + std::to_string(i) + ": the reference is all zeros\n";
    double worst = 0;
    if (!kiln::compiler::all_close(got, want[i], kiln::compiler::tolerance_for(want[i].dtype),
                                   &worst)) {
      why += "output " + std::to_string(i) + " n=" + std::to_string(n) +
             " worst/tol=" + std::to_string(worst) + "\n";
    }
  }
  return why;
}

}  // namespace kiln_test
