// Three graphs of one package built for cpu:x86-64 and cpu:x86-64-v3
// (tests/graph_targets/CMakeLists.txt): `low` is kept to cpu:x86-64 by
// GRAPH_TARGETS, `high` to cpu:x86-64-v3 by its declaration (which also
// names a CUDA target the package lacks: ignored), `both` gets both.
#include <kiln/graph.h>

namespace {

kiln::Outputs affine(float scale, float shift) {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20});
  auto x = kiln::input("x", kiln::f32, {n});
  return kiln::outputs(x * scale + shift);
}

}  // namespace

KILN_GRAPH(low) { return affine(2.0f, 1.0f); }

KILN_GRAPH(high) {
  kiln::graph_targets({"cpu:x86-64-v3", "cuda:sm_90"});
  return affine(3.0f, -1.0f);
}

KILN_GRAPH(both) { return affine(-1.0f, 0.5f); }
