// The graph of tests/signed_package: built twice, signed (SIGN_KEY) and not.
#include <kiln/graph.h>

KILN_GRAPH(affine) {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20});
  auto x = kiln::input("x", kiln::f32, {n});
  return kiln::outputs(x * 2.0f + 1.0f);
}
