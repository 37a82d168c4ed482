// CUDA reduction kernels run without a GPU: the generated sources compile
// with the host compiler against test_support/cuda_emulator.h (a thread per
// CUDA thread, barriers for __syncthreads and the warp shuffles) into a shared
// object, and every launch of the plan runs in order on buffers laid out as
// the plan says. The outputs must match the interpreter. This checks the
// kernels' logic (column, row and split shapes, argmax's ties, the temps of a
// split), not the GPU: tests/gpu runs them on one.
#include <dlfcn.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/cuda_codegen.h"
#include "kiln/compiler/interpreter.h"
#include "kiln/graph.h"
#include "kiln/support/process.h"
#include "test_support/gemm_reference.h"

namespace {

namespace fs = std::filesystem;
using kiln::compiler::BufferRole;
using kiln::compiler::CudaLoweredGraph;
using kiln::compiler::HostTensor;

using LaunchFn = void (*)(int, void**, const int64_t*, int64_t, int64_t, unsigned);

const char* storage_type(kiln::DType t) {
  switch (t) {
    case kiln::DType::f32:
      return "float";
    case kiln::DType::f64:
      return "double";
    case kiln::DType::i32:
      return "int32_t";
    case kiln::DType::i64:
      return "int64_t";
    case kiln::DType::boolean:
      return "uint8_t";
    default:
      return "uint16_t";
  }
}

// The kernels of `L` and kiln_emu_run(launch, buffers, symbols, grid, block)
// in one shared object; returns its dlopen handle.
void* build(const std::string& name, const kiln::ir::Graph& g, const CudaLoweredGraph& L) {
  const fs::path dir = fs::path(KILN_TEST_BINARY_DIR) / "cuda_emulated" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string src = "#include \"cuda_emulator.h\"\n";
  for (const auto& k : L.kernels) {
    std::string s = k.source;
    for (const std::string_view inc :
         {"#include <stdint.h>", "#include <string.h>", "#include <math.h>"}) {
      const size_t p = s.find(inc);
      if (p != std::string::npos) s.erase(p, inc.size());
    }
    src += s + "\n";
  }
  src +=
      "extern \"C\" void kiln_emu_run(int l, void** b, const int64_t* s, int64_t gx, int64_t gy,"
      " unsigned bx) {\n  switch (l) {\n";
  for (size_t l = 0; l < L.launches.size(); ++l) {
    const auto& launch = L.launches[l];
    if (launch.gemm) continue;  // a library call: run_gemm below, not a kernel
    src += "    case " + std::to_string(l) + ": kiln_emu_launch(gx, gy, bx, [&] { " +
           L.kernels[launch.kernel].entry + "(";
    for (size_t a = 0; a < launch.buffers.size(); ++a) {
      src += std::string(a ? ", " : "") + "(" + storage_type(L.buffers[launch.buffers[a]].dtype) +
             "*)b[" + std::to_string(launch.buffers[a]) + "]";
    }
    for (size_t k = 0; k < g.symbols.size(); ++k) src += ", s[" + std::to_string(k) + "]";
    src += "); }); break;\n";
  }
  src += "  }\n}\n";
  std::ofstream(dir / "kernels.cpp") << src;
  const auto r = kiln::support::run_process(
      {KILN_TEST_CLANGXX, "-std=c++20", "-O1", "-fPIC", "-shared", "-pthread", "-w",
       "-I" + std::string(KILN_TEST_SOURCE_DIR) + "/tests/unit/test_support",
       (dir / "kernels.cpp").string(), "-o", (dir / "kernels.so").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code != 0) return nullptr;
  void* h = dlopen((dir / "kernels.so").c_str(), RTLD_NOW | RTLD_LOCAL);
  EXPECT_NE(h, nullptr) << dlerror();
  return h;
}

// A library call of the lowering, as cuBLASLt would run it: the GemmCall
// semantics on the host (gemm_reference.h), with the plan's sizes evaluated.
void run_gemm(const kiln::compiler::GemmLaunch& g, const CudaLoweredGraph& L,
              const std::vector<uint32_t>& buffers, const std::vector<void*>& ptrs,
              const kiln::ir::SymbolValues& syms) {
  kiln::GemmProblem p;
  p.a_dtype = g.a_dtype;
  p.b_dtype = g.b_dtype;
  p.d_dtype = g.d_dtype;
  p.m = g.m.evaluate(syms);
  p.n = g.n.evaluate(syms);
  p.k = g.k.evaluate(syms);
  p.batch = g.batch.evaluate(syms);
  p.trans_a = g.trans_a;
  p.trans_b = g.trans_b;
  p.lda = g.lda.evaluate(syms);
  p.ldb = g.ldb.evaluate(syms);
  p.stride_a = g.stride_a.evaluate(syms);
  p.stride_b = g.stride_b.evaluate(syms);
  p.alpha = g.alpha;
  p.epilogue = static_cast<kiln::GemmEpilogue>(g.epilogue);
  ASSERT_EQ(buffers.size(), kiln::gemm_has_bias(p.epilogue) ? 4u : 3u);
  auto numel = [&](uint32_t b) { return L.buffers[b].numel.evaluate(syms); };
  kiln_test::gemm_reference_bytes(
      p, ptrs[buffers[0]], numel(buffers[0]), ptrs[buffers[1]], numel(buffers[1]),
      buffers.size() > 3 ? ptrs[buffers[3]] : nullptr, ptrs[buffers[2]]);
}

// What a run computed and what the interpreter wants, for checks of their own.
using RunCheck =
    std::function<void(const std::vector<HostTensor>& got, const std::vector<HostTensor>& want)>;

// Runs every launch of `g`'s dynamic lowering at each n and compares.
void check(const std::string& name, kiln::GraphFunction f, const std::vector<int64_t>& sizes,
           size_t want_splits, const RunCheck& also = nullptr, size_t want_gemms = 0) {
  const kiln::ir::Graph g = kiln::ir::canonicalize(kiln::trace(name, f));
  kiln::compiler::CudaCodegenOptions o;
  o.entry_prefix = "emu_" + name;
  o.aligned16 = false;
  const CudaLoweredGraph L =
      kiln::compiler::lower_cuda(g, kiln::ir::SymbolValues(g.symbols.size(), -1), o);
  size_t splits = 0;
  for (const auto& k : L.kernels) splits += k.entry.ends_with("_final") ? 1 : 0;
  EXPECT_EQ(splits, want_splits);
  void* h = build(name, g, L);
  ASSERT_NE(h, nullptr);
  auto run = reinterpret_cast<LaunchFn>(dlsym(h, "kiln_emu_run"));
  ASSERT_NE(run, nullptr);
  std::mt19937_64 rng(11);
  size_t gemms = 0;
  for (int64_t n : sizes) {
    SCOPED_TRACE(name + " n=" + std::to_string(n));
    const kiln::ir::SymbolValues syms(g.symbols.size(), n);
    std::vector<HostTensor> inputs;
    for (int32_t id : g.inputs) {
      inputs.push_back(kiln::compiler::random_tensor(
          g.node(id).dtype, kiln::ir::eval_shape(g.node(id).shape, syms), rng));
      // Repeated values: argmax must keep the first of equal maxima.
      auto& v = inputs.back().values;
      for (size_t i = 0; i + 7 < v.size(); i += 11) v[i + 7] = v[i];
    }
    const auto want = kiln::compiler::interpret(g, inputs);
    std::vector<std::vector<uint8_t>> bufs(L.buffers.size());
    std::vector<void*> ptrs;
    for (size_t i = 0; i < L.buffers.size(); ++i) {
      const auto& pb = L.buffers[i];
      if (pb.role == BufferRole::input) {
        bufs[i] = inputs.at(pb.index).to_bytes();
      } else {
        bufs[i].assign(static_cast<size_t>(pb.numel.evaluate(syms)) *
                           static_cast<size_t>(kiln::dtype_size(pb.dtype)),
                       0xA5);  // garbage: every element must be written
      }
      ptrs.push_back(bufs[i].data());
    }
    for (size_t l = 0; l < L.launches.size(); ++l) {
      const auto& launch = L.launches[l];
      if (launch.gemm) {
        run_gemm(*launch.gemm, L, launch.buffers, ptrs, syms);
        ++gemms;
        continue;
      }
      ASSERT_EQ(launch.block[0] % 32, 0u);
      run(static_cast<int>(l), ptrs.data(), syms.data(), launch.grid[0].evaluate(syms),
          launch.grid[1].evaluate(syms), launch.block[0]);
    }
    std::vector<HostTensor> outs(want.size());
    for (size_t i = 0; i < L.buffers.size(); ++i) {
      const auto& pb = L.buffers[i];
      if (pb.role != BufferRole::output) continue;
      const HostTensor& w = want.at(pb.index);
      const HostTensor got = HostTensor::from_bytes(pb.dtype, w.shape, bufs[i].data());
      double worst = 0;
      EXPECT_TRUE(kiln::compiler::all_close(got, w, kiln::compiler::tolerance_for(w.dtype), &worst))
          << "output " << g.output_names.at(pb.index) << ": worst error/tolerance " << worst;
      outs.at(pb.index) = got;
    }
    if (also) also(outs, want);
  }
  EXPECT_EQ(gemms, want_gemms * sizes.size());
  dlclose(h);
}

// Matmuls as cuBLASLt library calls: their epilogue in the call, what follows
// in kernels that read the call's D. Short K keeps f32 within its tolerance
// (the emulator runs f32 kernels only: its TU cannot hold 16-bit helpers twice).
kiln::Outputs g_matmul() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {3, n, 16});
  auto w = kiln::input("w", kiln::f32, {16, 24});
  auto y = kiln::input("y", kiln::f32, {3, 24, 5});
  auto b = kiln::input("b", kiln::f32, {24});
  auto h = kiln::relu(kiln::matmul(x, w) * 0.5 + b);  // one call: scale, bias, relu
  auto z = kiln::matmul(kiln::tanh(h), y);            // a batched call on a kernel's output
  return kiln::outputs(h, kiln::softmax(z), kiln::matmul(x, w) - 1.0);
}

TEST(CudaEmulated, MatmulLibraryCallsMatchTheInterpreter) {
  check("matmul", &g_matmul, {1, 2, 37}, 0, nullptr, 3);
}

kiln::Outputs g_axes() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 6, 5});
  auto w = kiln::input("w", kiln::i32, {n, 3});
  return kiln::outputs(kiln::sum(x, 1), kiln::mean(x, 1, true), kiln::max(x, {0, 2}),
                       kiln::min(x, {1, 2}), kiln::prod(x, 1), kiln::argmax(x, 1),
                       kiln::argmax(x, 1, true), kiln::argmax(x, -1), kiln::argmax(w, -1),
                       kiln::max(w, 1), kiln::log_softmax(x, 1),
                       kiln::sum(kiln::exp(x) * 2.0, 0));  // its operand computed inline
}

kiln::Outputs g_split() {
  auto n = kiln::sym("n");
  auto y = kiln::input("y", kiln::f32, {n});
  auto x = kiln::input("x", kiln::f32, {n, 5});
  auto w = kiln::input("w", kiln::i32, {n, 3});
  return kiln::outputs(kiln::sum(y), kiln::argmax(y), kiln::sum(x, 0), kiln::argmax(x, 0),
                       kiln::argmax(w, 0), kiln::sum(w, kiln::all_axes(w)),
                       kiln::max(x, kiln::all_axes(x)), kiln::mean(x, {0, 1}, true),
                       kiln::min(y, 0, true), kiln::prod(x, 0),
                       kiln::sum(kiln::abs(y) + 1.0));  // its operand computed inline
}

TEST(CudaEmulated, ColumnAndRowReductionsMatchTheInterpreter) {
  check("axes", &g_axes, {1, 2, 37}, 1);  // the sum over n splits
}

// Every output splits (eleven pairs of launches). At n = 70000 the split rows of y
// take 18 parts, those of all of x 86, and the split columns 128.
TEST(CudaEmulated, SplitReductionsMatchTheInterpreter) {
  check("split", &g_split, {3, 9000, 70000}, 11);
}

// Views and index kernels: a reshape read in place (by a pointwise kernel
// and by a reduction), broadcasts, and the grid-stride index kernels, with
// symbolic sizes. 16-bit data only moves (no conversion to emulate).
kiln::Outputs g_shape_ops() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", kiln::f32, {n, 3, 5});
  auto h = kiln::input("h", kiln::bf16, {n, 4});
  auto ids = kiln::input("ids", kiln::i64, {n});
  auto k = kiln::input("k", kiln::i32, {2, 3});
  auto w = kiln::input("w", kiln::f32, {5});
  auto b = kiln::input("b", kiln::boolean, {n, 2});
  auto y = x * 2.0;
  auto flat = kiln::reshape(y, {n, 15});
  return kiln::outputs(kiln::transpose(x, 0, 2), kiln::permute(y, {1, 2, 0}),
                       kiln::slice(x, 2, 1, 5, 2), kiln::concat({x, y, x}, 1),
                       kiln::gather(x, ids - 5, 2),
                       kiln::embedding(h, kiln::cast(ids, kiln::i32) - 3), kiln::transpose(h, 0, 1),
                       kiln::gather(b, k - 3, 1),
                       kiln::iota({n, 4}, 0, kiln::i32) + kiln::iota({1, 4}, 1, kiln::i32),
                       kiln::iota({n}, 0, kiln::f32), flat, kiln::sum(flat, -1),
                       kiln::sum(kiln::reshape(x, {n, 15}), 0), kiln::expand(w, {n, 3, 5}) * x,
                       kiln::broadcast_to(kiln::max(x, -1, true), {n, 3, 5}) - x);
}

TEST(CudaEmulated, ViewsAndIndexKernelsMatchTheInterpreter) {
  check("shape_ops", &g_shape_ops, {1, 2, 37, 300}, 1);  // the sum over n (a view of x) splits
}

// Indices out of [-V, V) read nothing: they give the fill value.
kiln::Outputs g_gather_fill() {
  auto n = kiln::sym("n");
  auto f = kiln::input("f", kiln::f32, {4, 3});
  auto i = kiln::input("i", kiln::i32, {4});
  auto l = kiln::input("l", kiln::i64, {4});
  auto b = kiln::input("b", kiln::boolean, {4});
  auto ids = kiln::input("ids", kiln::i64, {n}) - 5;  // [-4, 4]: 4 is out of range
  return kiln::outputs(kiln::embedding(f, ids), kiln::gather(i, ids), kiln::gather(l, ids),
                       kiln::gather(b, ids), ids);
}

TEST(CudaEmulated, GatherOutOfRangeGivesTheFillValue) {
  size_t filled = 0;
  check("gather_fill", &g_gather_fill, {50}, 0,
        [&](const std::vector<HostTensor>& got, const std::vector<HostTensor>& want) {
          const auto& ids = want[4].values;
          for (size_t p = 0; p < ids.size(); ++p) {
            if (ids[p] != 4) continue;
            ++filled;
            EXPECT_TRUE(std::isnan(got[0].values[p * 3])) << p;
            EXPECT_EQ(got[1].values[p], -2147483648.0) << p;
            EXPECT_EQ(got[2].values[p], -9223372036854775808.0) << p;
            EXPECT_EQ(got[3].values[p], 1.0) << p;
          }
        });
  EXPECT_GT(filled, 0u);  // 50 draws of [1, 9]: some are 9
}

}  // namespace
