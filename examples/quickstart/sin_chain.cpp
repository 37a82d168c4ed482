// 10,000 sins in a row (the shape of PyTorch's cache_hit_microbenchmarks.py),
// fused into one kernel. Part of the quickstart, and built alone into the
// load benchmark's package (tests/bench).
#include <kiln/graph.h>

KILN_GRAPH(sin_chain) {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 24});
  auto x = kiln::input("x", kiln::f32, {n});
  auto y = x;
  for (int i = 0; i < 10000; ++i) y = kiln::sin(y);
  return kiln::outputs(y);
}
