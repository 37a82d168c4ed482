// A transformer MLP block in bf16: linear, gelu, linear, residual, layernorm,
// at the sizes of ../shared/ANCHORS.md (d_model 1024, hidden 4096). Weights
// are stored [in, out], so each linear is x @ w + b.
#include <kiln/graph.h>

KILN_GRAPH(mlp) {
  // 8192 tokens is the GPU benchmark's size; 8 the CPU check's.
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20, .hot = {8, 8192}});
  auto x = kiln::input("x", kiln::bf16, {n, 1024});
  auto w1 = kiln::input("w1", kiln::bf16, {1024, 4096});
  auto b1 = kiln::input("b1", kiln::bf16, {4096});
  auto w2 = kiln::input("w2", kiln::bf16, {4096, 1024});
  auto b2 = kiln::input("b2", kiln::bf16, {1024});
  auto gamma = kiln::input("gamma", kiln::bf16, {1024});
  auto beta = kiln::input("beta", kiln::bf16, {1024});
  // On CUDA the bias adds run in cuBLASLt's epilogue; gelu (the exact erf
  // form, which cuBLASLt's tanh GELU epilogue is not) in a kernel of its own,
  // and the residual joins the layernorm's kernel.
  auto h = kiln::gelu(kiln::matmul(x, w1) + b1);
  auto y = kiln::matmul(h, w2) + b2 + x;
  return kiln::outputs(kiln::layernorm(y, gamma, beta));
}
