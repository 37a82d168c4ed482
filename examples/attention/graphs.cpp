// Single-head scaled dot-product attention with a causal mask, in bf16:
//   softmax(mask(q k^T / sqrt(d))) v
// at the head size of ../shared/ANCHORS.md (d 128). The transpose of k folds
// into the matmul (a transposed operand, no copy); the mask is computed from
// two small iotas inside the softmax's kernel, never stored as n x n.
#include <cmath>
#include <limits>

#include <kiln/graph.h>

KILN_GRAPH(attention) {
  // b16 n2048 and b1 n8192 are the GPU benchmark's sizes; b2 n16 the CPU
  // check's.
  auto b = kiln::sym("b", {.min = 1, .max = 1 << 16});
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20, .hot = {2048, 8192}});
  constexpr int64_t kHead = 128;
  auto q = kiln::input("q", kiln::bf16, {b, n, kHead});
  auto k = kiln::input("k", kiln::bf16, {b, n, kHead});
  auto v = kiln::input("v", kiln::bf16, {b, n, kHead});
  auto scores = kiln::matmul(q, kiln::transpose(k, -1, -2)) * (1.0 / std::sqrt(double(kHead)));
  // Query i sees keys j <= i. Shaped [b, n, n] like the scores, so the
  // compare joins the softmax's row kernel.
  auto causal = kiln::iota({b, n, 1}, 1, kiln::i32) >= kiln::iota({1, 1, n}, 2, kiln::i32);
  auto masked = kiln::where(causal, scores,
                            kiln::constant(-std::numeric_limits<double>::infinity(), kiln::bf16));
  return kiln::outputs(kiln::matmul(kiln::softmax(masked), v));
}
