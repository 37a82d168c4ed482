// The dispatch benchmark's graph, in the shape of PyTorch's dynamo_guard_eval
// microbenchmark: 100 tensor inputs sharing one symbol s, with hot values 10,
// 20, ..., 100, so the package holds ten static specializations and the
// general one.
#include <string>

#include <kiln/graph.h>

KILN_GRAPH(hundred_inputs) {
  auto s =
      kiln::sym("s", {.min = 1, .max = 1 << 20, .hot = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100}});
  kiln::Tensor sum = kiln::input("x0", kiln::f32, {s});
  for (int i = 1; i < 100; ++i) sum = sum + kiln::input("x" + std::to_string(i), kiln::f32, {s});
  return kiln::outputs(sum);
}
