// Runs the MLP block from its embedded package, on the GPU when there is one,
// on random inputs, and checks it against the reference interpreter.
#include <string>

#include "graph_check.h"
#include "mlp_kernels.h"

int main(int argc, char** argv) {
  // The interpreter sums in double, one product at a time: a few tokens keep
  // the check to a second. `mlp_example N` checks N tokens instead.
  const int64_t tokens = argc > 1 ? std::stoll(argv[1]) : 8;
  return check_registered_graphs("mlp",
                                 "x [" + std::to_string(tokens) + ", 1024] -> 4096 -> 1024, bf16",
                                 mlp_kernels::loaded_package(), {}, tokens);
}
