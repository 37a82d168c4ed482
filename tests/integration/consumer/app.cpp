#include <cstdint>
#include <cstdio>
#include <vector>

#include <kiln/error.h>

#include "my_kernels.h"  // generated: my_kernels::scale_shift(x, y, total, stream)

int main() {
  const int64_t n = 3;  // any n in [1, 1 << 20]; n = 16 runs a static specialization
  std::vector<float> x(n * 4);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  std::vector<float> y(n * 4);  // the caller allocates every output
  float total = 0;              // rank 0: one element, shape {}
  try {
    my_kernels::scale_shift(kiln::TensorView(x.data(), kiln::DType::f32, {n, 4}),
                            kiln::TensorView(y.data(), kiln::DType::f32, {n, 4}),
                            kiln::TensorView(&total, kiln::DType::f32, {}));
  } catch (const kiln::Error& e) {  // a shape the package does not cover, a bad tensor, ...
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  for (int64_t row = 0; row < n; ++row) {
    std::printf("y[%lld] = %g %g %g %g\n", static_cast<long long>(row), y[row * 4],
                y[row * 4 + 1], y[row * 4 + 2], y[row * 4 + 3]);
  }
  std::printf("total = %g\n", total);
  return 0;
}
