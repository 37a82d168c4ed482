// A graph declared the way a user declares one; traced by the generator at build
// time, never compiled into the app.
#include <kiln/graph.h>

KILN_GRAPH(scale_shift) {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20, .hot = {16}});
  auto x = kiln::input("x", kiln::f32, {n, 64});
  return kiln::outputs(x * 2.0f + 1.0f);
}
