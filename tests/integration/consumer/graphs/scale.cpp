// Traced at build time by the generator; never compiled into the app.
#include <kiln/graph.h>

KILN_GRAPH(scale_shift) {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20, .hot = {16}});
  auto x = kiln::input("x", kiln::f32, {n, 4});
  auto y = x * 2.0 + 1.0;
  // Two outputs: y, and the sum of all its elements (a full reduction: rank 0).
  return kiln::outputs(y, kiln::sum(y, kiln::all_axes(y))).named({"y", "total"});
}
