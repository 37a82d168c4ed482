// Runs causal attention from its embedded package, on the GPU when there is one,
// on random inputs, and checks it against the reference interpreter.
#include <string>

#include "attention_kernels.h"
#include "graph_check.h"

int main(int argc, char** argv) {
  // The interpreter sums in double, one product at a time: a short sequence
  // keeps the check to a second. `attention_example N B` checks a sequence
  // of N in a batch of B instead.
  const int64_t tokens = argc > 1 ? std::stoll(argv[1]) : 40;
  const int64_t batch = argc > 2 ? std::stoll(argv[2]) : 2;
  return check_registered_graphs(
      "attention",
      "causal, q k v [" + std::to_string(batch) + ", " + std::to_string(tokens) + ", 128], bf16",
      attention_kernels::loaded_package(), {{"b", batch}}, tokens);
}
