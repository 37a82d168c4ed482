// C++ codegen for CPU: every generated kernel is compiled with clang through
// the Ninja driver, loaded with dlopen, run over uneven work ranges, and
// checked against the reference interpreter.
#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/abi/cpu_kernel.h"
#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/interpreter.h"
#include "kiln/compiler/ir.h"
#include "kiln/compiler/ninja_driver.h"
#include "kiln/compiler/schedule.h"
#include "kiln/graph.h"

namespace {

namespace fs = std::filesystem;
using kiln::DType;
using kiln::compiler::CpuLoweredGraph;
using kiln::compiler::HostTensor;
using kiln::ir::Graph;

// The production target where the CPU has it (vector math through libmvec),
// else the baseline.
std::string test_arch() {
  __builtin_cpu_init();
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi2");
  return v3 ? "x86-64-v3" : "x86-64";
}
const std::string kArch = test_arch();

fs::path work_root() { return fs::path(KILN_TEST_BINARY_DIR) / "codegen_cpu_work"; }

// ---------------------------------------------------------------------------
// A batch of lowered graphs compiled into one shared object.

struct ShapeSet {
  std::vector<std::vector<int64_t>> input_shapes;
};

struct Case {
  std::string label;
  Graph graph;
  kiln::ir::SymbolValues static_values;
  std::vector<ShapeSet> runs;
  CpuLoweredGraph lowered;
};

class Batch {
 public:
  explicit Batch(std::string name, std::string arch = kArch)
      : name_(std::move(name)), arch_(std::move(arch)) {}
  ~Batch() {
    if (handle_ != nullptr) dlclose(handle_);
  }

  // Adds the dynamic specialization (run on every shape set) and one static
  // specialization per entry of `static_runs` (each run on its own shapes).
  void add(const std::string& label, const Graph& g, const std::vector<ShapeSet>& runs,
           const std::vector<size_t>& static_runs = {}) {
    Case dyn;
    dyn.label = label + "/dynamic";
    dyn.graph = g;
    dyn.static_values.assign(g.symbols.size(), -1);
    dyn.runs = runs;
    push(std::move(dyn));
    for (size_t r : static_runs) {
      Case st;
      st.label = label + "/static" + std::to_string(r);
      st.graph = g;
      st.static_values = bind(g, runs.at(r));
      st.runs = {runs.at(r)};
      push(std::move(st));
    }
  }

  void build() {
    kiln::compiler::NinjaBuildRequest req;
    req.work_dir =
        work_root() / name_;  // one build.ninja per batch: ctest may run tests in parallel
    req.cxx = KILN_TEST_CLANGXX;
    req.ninja = KILN_TEST_NINJA;
    kiln::compiler::SharedLibraryBuild lib;
    lib.name = name_;
    lib.sources.push_back({"abi.cpp", kiln::compiler::cpu_abi_source()});
    for (const Case& c : cases_) {
      for (const auto& k : c.lowered.kernels) lib.sources.push_back({k.entry + ".cpp", k.source});
    }
    lib.cxx_flags = kiln::compiler::cpu_compile_flags(arch_);
    lib.link_flags = {"-shared", "-lmvec", "-lm"};
    req.libraries.push_back(lib);
    const auto libs = kiln::compiler::run_ninja_build(req);
    ASSERT_EQ(libs.size(), 1u);
    handle_ = dlopen(libs[0].c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle_, nullptr) << dlerror();
    auto abi = reinterpret_cast<KilnCpuAbiVersionFn>(dlsym(handle_, "kiln_cpu_abi_version"));
    ASSERT_NE(abi, nullptr);
    EXPECT_EQ(abi(), KILN_CPU_ABI_VERSION);
  }

  // Runs every case on random inputs and compares with the interpreter.
  void check(uint64_t seed = 1) {
    ASSERT_NE(handle_, nullptr);
    struct Report {
      const Batch* b;
      ~Report() {
        std::printf("[%s] %zu kernels (%s), %zu outputs checked\n", b->name_.c_str(),
                    b->kernel_count(), b->arch_.c_str(), b->checked_outputs);
      }
    } report{this};
    std::mt19937_64 rng(seed);
    for (const Case& c : cases_) {
      for (const ShapeSet& run : c.runs) {
        SCOPED_TRACE(c.label + " " + shapes_string(run));
        std::vector<HostTensor> inputs;
        for (size_t i = 0; i < c.graph.inputs.size(); ++i) {
          inputs.push_back(kiln::compiler::random_tensor(c.graph.node(c.graph.inputs[i]).dtype,
                                                         run.input_shapes.at(i), rng));
        }
        const auto want = kiln::compiler::interpret(c.graph, inputs);
        const auto got = execute(c, inputs);
        ASSERT_EQ(got.size(), want.size());
        for (size_t k = 0; k < got.size(); ++k) {
          const DType t = want[k].dtype;
          double worst = 0;
          const bool ok =
              kiln::compiler::all_close(got[k], want[k], kiln::compiler::tolerance_for(t), &worst);
          EXPECT_TRUE(ok) << "output " << k << " (" << c.graph.output_names[k] << ", "
                          << kiln::dtype_name(t) << "): worst error/tolerance " << worst
                          << first_mismatch(got[k], want[k]);
          ++checked_outputs;
        }
      }
    }
  }

  // Runs case i on given inputs (no comparison).
  std::vector<HostTensor> run_case(size_t i, const std::vector<HostTensor>& inputs) {
    return execute(cases_.at(i), inputs);
  }

  const std::vector<Case>& cases() const { return cases_; }
  size_t kernel_count() const {
    size_t n = 0;
    for (const auto& c : cases_) n += c.lowered.kernels.size();
    return n;
  }
  size_t checked_outputs = 0;

 private:
  static kiln::ir::SymbolValues bind(const Graph& g, const ShapeSet& r) {
    std::mt19937_64 rng(0);
    std::vector<HostTensor> inputs;
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      HostTensor t;
      t.dtype = g.node(g.inputs[i]).dtype;
      t.shape = r.input_shapes.at(i);
      t.values.assign(static_cast<size_t>(t.numel()), 1.0);
      inputs.push_back(std::move(t));
    }
    return kiln::compiler::bind_symbols(g, inputs);
  }

  void push(Case c) {
    kiln::compiler::CpuCodegenOptions o;
    o.entry_prefix = "kt_" + name_ + "_" + std::to_string(cases_.size());
    c.lowered = kiln::compiler::lower_cpu(c.graph, c.static_values, o);
    cases_.push_back(std::move(c));
  }

  static std::string shapes_string(const ShapeSet& r) {
    std::ostringstream os;
    for (const auto& s : r.input_shapes) {
      os << "[";
      for (size_t i = 0; i < s.size(); ++i) os << (i ? "," : "") << s[i];
      os << "]";
    }
    return os.str();
  }

  static std::string first_mismatch(const HostTensor& got, const HostTensor& want) {
    const auto tol = kiln::compiler::tolerance_for(want.dtype);
    for (size_t i = 0; i < got.values.size() && i < want.values.size(); ++i) {
      const double a = got.values[i];
      const double b = want.values[i];
      if (std::isnan(a) && std::isnan(b)) continue;
      if (std::isinf(b) && a == b) continue;
      if (!(std::fabs(a - b) <= tol.atol + tol.rtol * std::fabs(b))) {
        std::ostringstream os;
        os << "; first mismatch at " << i << ": got " << a << ", want " << b;
        return os.str();
      }
    }
    return "";
  }

  std::vector<HostTensor> execute(const Case& c, const std::vector<HostTensor>& inputs) {
    const Graph& g = c.graph;
    const kiln::ir::SymbolValues syms = kiln::compiler::bind_symbols(g, inputs);
    const CpuLoweredGraph& L = c.lowered;
    std::vector<std::vector<uint8_t>> bufs(L.buffers.size());
    for (size_t b = 0; b < L.buffers.size(); ++b) {
      const auto& pb = L.buffers[b];
      const int64_t numel = pb.numel.evaluate(syms);
      const size_t bytes =
          static_cast<size_t>(numel) * static_cast<size_t>(kiln::dtype_size(pb.dtype));
      if (pb.role == kiln::compiler::BufferRole::input) {
        bufs[b] = inputs.at(pb.index).to_bytes();
        EXPECT_EQ(bufs[b].size(), bytes);
      } else {
        bufs[b].assign(bytes, 0xA5);  // garbage: every element must be written
      }
    }
    for (const auto& launch : L.launches) {
      const auto& k = L.kernels.at(launch.kernel);
      auto fn = reinterpret_cast<KilnCpuKernelFn>(dlsym(handle_, k.entry.c_str()));
      EXPECT_NE(fn, nullptr) << k.entry;
      if (fn == nullptr) return {};
      std::vector<void*> ptrs;
      for (uint32_t b : launch.buffers) ptrs.push_back(bufs.at(b).data());
      const KilnCpuKernelArgs args{ptrs.data(), syms.data()};
      const int64_t n = launch.work_items.evaluate(syms);
      EXPECT_GE(launch.item_cost.evaluate(syms), 1);
      // Three uneven ranges (some empty for tiny n).
      const int64_t a = n / 3;
      const int64_t b = a + (n - a) * 5 / 7;
      fn(&args, 0, a);
      fn(&args, a, b);
      fn(&args, b, n);
    }
    std::vector<HostTensor> outs;
    for (size_t b = 0; b < L.buffers.size(); ++b) {
      const auto& pb = L.buffers[b];
      if (pb.role != kiln::compiler::BufferRole::output) continue;
      const int32_t node = g.outputs.at(pb.index);
      outs.push_back(HostTensor::from_bytes(
          pb.dtype, kiln::ir::eval_shape(g.node(node).shape, syms), bufs[b].data()));
    }
    return outs;
  }

  std::string name_;
  std::string arch_;
  std::vector<Case> cases_;
  void* handle_ = nullptr;
};

// ---------------------------------------------------------------------------
// Graphs. Tracing takes a plain function pointer, so parameters go through
// these globals.

DType g_t = DType::f32;

std::vector<ShapeSet> sizes_2d(size_t inputs = 1) {
  std::vector<ShapeSet> runs;
  for (auto [n, m] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {7, 13}, {33, 1}, {1, 1000}, {65, 257}, {3, 4100}}) {
    ShapeSet r;
    for (size_t i = 0; i < inputs; ++i) r.input_shapes.push_back({n, m});
    runs.push_back(r);
  }
  return runs;
}

kiln::Outputs g_unary_float() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", g_t, {n, m});
  auto ax = kiln::abs(x);
  return kiln::Outputs({kiln::neg(x), ax, kiln::exp(x), kiln::log(ax), kiln::sin(x), kiln::cos(x),
                        kiln::tanh(x), kiln::tanh(x * 6.0), kiln::sigmoid(x), kiln::relu(x),
                        kiln::gelu(x), kiln::gelu(x * 3.0), kiln::sqrt(ax), kiln::rsqrt(ax),
                        kiln::square(x), kiln::pow(ax, 1.7)});
}

kiln::Outputs g_unary_int() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", g_t, {n, m}) - 5.0;  // ints in [1, 9] -> [-4, 4]
  return kiln::Outputs({kiln::neg(x), kiln::abs(x), kiln::relu(x), kiln::square(x)});
}

kiln::Outputs g_unary_bool() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", DType::boolean, {n, m});
  return kiln::outputs(kiln::logical_not(x));
}

TEST(CodegenCpu, UnaryOps) {
  Batch batch("unary");
  for (DType t : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    g_t = t;
    batch.add(std::string("unary_") + std::string(kiln::dtype_name(t)),
              kiln::trace("unary_float", &g_unary_float), sizes_2d(), {4});
  }
  for (DType t : {DType::i32, DType::i64}) {
    g_t = t;
    batch.add(std::string("unary_") + std::string(kiln::dtype_name(t)),
              kiln::trace("unary_int", &g_unary_int), sizes_2d());
  }
  batch.add("unary_bool", kiln::trace("unary_bool", &g_unary_bool), sizes_2d(), {1});
  batch.build();
  batch.check();
}

// Binary ops against every broadcast pattern of a 2-D domain, both operand
// orders.
kiln::Outputs g_binary_2d() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto a = kiln::input("a", g_t, {n, m});
  std::vector<kiln::Tensor> bs = {kiln::input("b_full", g_t, {n, m}),
                                  kiln::input("b_scalar", g_t, {}), kiln::input("b_row", g_t, {m}),
                                  kiln::input("b_col", g_t, {n, 1}),
                                  kiln::input("b_1m", g_t, {1, m})};
  std::vector<kiln::Tensor> outs;
  const bool is_float = kiln::dtype_is_float(g_t);
  for (const auto& b : bs) {
    for (int order = 0; order < 2; ++order) {
      auto x = order == 0 ? a : b;
      auto y = order == 0 ? b : a;
      outs.push_back(x + y);
      outs.push_back(x - y);
      outs.push_back(x * y);
      outs.push_back(kiln::maximum(x, y));
      outs.push_back(kiln::minimum(x, y));
      if (is_float) {
        outs.push_back(x / y);
        outs.push_back(kiln::pow(kiln::abs(x), y));
      }
    }
  }
  // Both operands broadcast: [n, 1] with [1, m].
  outs.push_back(bs[3] * bs[4] + bs[3]);
  return kiln::Outputs(outs);
}

// Rank 3 with a broadcast middle dim, and rank-1 operands.
kiln::Outputs g_binary_3d() {
  auto p = kiln::sym("p");
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto a = kiln::input("a", g_t, {p, n, m});
  auto b = kiln::input("b_mid", g_t, {p, 1, m});
  auto c = kiln::input("c_nm", g_t, {n, m});
  auto d = kiln::input("d_pn1", g_t, {p, n, 1});
  auto e = kiln::input("e_11m", g_t, {1, 1, m});
  return kiln::Outputs(
      {a + b, b * a, a - c, c - a, kiln::maximum(a, d), d * e, b + d, (a + b) * (c + d) - e});
}

std::vector<ShapeSet> sizes_binary_2d() {
  std::vector<ShapeSet> runs;
  for (auto [n, m] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 13}, {33, 1}, {1, 1000}, {65, 257}}) {
    runs.push_back(ShapeSet{{{n, m}, {n, m}, {}, {m}, {n, 1}, {1, m}}});
  }
  return runs;
}

std::vector<ShapeSet> sizes_binary_3d() {
  std::vector<ShapeSet> runs;
  for (auto [p, n, m] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 1, 1}, {2, 3, 5}, {3, 1, 7}, {5, 7, 33}}) {
    runs.push_back(ShapeSet{{{p, n, m}, {p, 1, m}, {n, m}, {p, n, 1}, {1, 1, m}}});
  }
  return runs;
}

TEST(CodegenCpu, BinaryOpsWithBroadcasting) {
  Batch batch("binary");
  for (DType t : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64}) {
    g_t = t;
    const bool main = t == DType::f32 || t == DType::bf16;
    const std::string name(kiln::dtype_name(t));
    batch.add("binary2d_" + name, kiln::trace("binary_2d", &g_binary_2d), sizes_binary_2d(),
              main ? std::vector<size_t>{1} : std::vector<size_t>{});
    batch.add("binary3d_" + name, kiln::trace("binary_3d", &g_binary_3d), sizes_binary_3d(),
              main ? std::vector<size_t>{3} : std::vector<size_t>{});
  }
  batch.build();
  batch.check();
}

kiln::Outputs g_compare() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto a = kiln::input("a", g_t, {n, m});
  auto b = kiln::input("b", g_t, {m});
  auto lt = a < b;
  auto eqs = kiln::eq(a, a * 1.0);
  return kiln::Outputs({lt, a <= b, a > b, a >= b, kiln::eq(a, b), kiln::ne(a, b), eqs,
                        kiln::where(lt, a, b), kiln::where(kiln::logical_not(lt), a * 2.0, b),
                        kiln::where(kiln::ne(lt, kiln::gt(a, b)), a, a - b)});
}

TEST(CodegenCpu, ComparisonsAndWhere) {
  Batch batch("compare");
  for (DType t : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64}) {
    g_t = t;
    std::vector<ShapeSet> runs;
    for (auto [n, m] :
         std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 13}, {33, 1}, {65, 257}}) {
      runs.push_back(ShapeSet{{{n, m}, {m}}});
    }
    batch.add("compare_" + std::string(kiln::dtype_name(t)), kiln::trace("compare", &g_compare),
              runs, t == DType::f32 ? std::vector<size_t>{1} : std::vector<size_t>{});
  }
  batch.build();
  batch.check();
}

kiln::Outputs g_casts() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", g_t, {n, 3});
  // Scale floats so that casts to int see values of several magnitudes.
  auto v = kiln::dtype_is_float(g_t) ? x * 37.0 : x;
  std::vector<kiln::Tensor> outs;
  for (DType to :
       {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i32, DType::i64, DType::boolean}) {
    outs.push_back(kiln::cast(v, to));
    // Round trip through `to` and back.
    if (to != g_t && g_t != DType::boolean) outs.push_back(kiln::cast(kiln::cast(v, to), g_t));
  }
  return kiln::Outputs(outs);
}

TEST(CodegenCpu, CastsBetweenAllDtypes) {
  Batch batch("casts");
  for (DType t :
       {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i32, DType::i64, DType::boolean}) {
    g_t = t;
    std::vector<ShapeSet> runs = {ShapeSet{{{1, 3}}}, ShapeSet{{{11, 3}}}, ShapeSet{{{200, 3}}}};
    batch.add("casts_" + std::string(kiln::dtype_name(t)), kiln::trace("casts", &g_casts), runs);
  }
  batch.build();
  batch.check();
}

kiln::Outputs g_reduce_float() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", g_t, {n, m});
  std::vector<kiln::Tensor> outs;
  for (bool keep : {true, false}) {
    outs.push_back(kiln::sum(x, -1, keep));
    outs.push_back(kiln::mean(x, -1, keep));
    outs.push_back(kiln::max(x, -1, keep));
    outs.push_back(kiln::min(x, -1, keep));
  }
  return kiln::Outputs(outs);
}

kiln::Outputs g_reduce_int() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", g_t, {n, m});
  return kiln::Outputs({kiln::sum(x, -1, true), kiln::sum(x, -1), kiln::max(x, -1, true),
                        kiln::min(x, -1), kiln::max(x - 5.0, -1), kiln::min(x - 5.0, -1, true)});
}

kiln::Outputs g_reduce_rank1() {
  auto m = kiln::sym("m");
  auto x = kiln::input("x", g_t, {m});
  return kiln::Outputs(
      {kiln::sum(x), kiln::mean(x, -1, true), kiln::max(x, 0), kiln::min(x, 0, true)});
}

kiln::Outputs g_reduce_rank3() {
  auto p = kiln::sym("p");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", g_t, {p, 3, m});
  return kiln::Outputs(
      {kiln::sum(x, -1), kiln::max(x * 2.0, -1, true), kiln::mean(kiln::exp(x), -1)});
}

TEST(CodegenCpu, Reductions) {
  Batch batch("reduce");
  for (DType t : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    g_t = t;
    const std::string name(kiln::dtype_name(t));
    batch.add("reduce_" + name, kiln::trace("reduce_float", &g_reduce_float), sizes_2d(), {4});
    batch.add("reduce1_" + name, kiln::trace("reduce_rank1", &g_reduce_rank1),
              {ShapeSet{{{1}}}, ShapeSet{{{3}}}, ShapeSet{{{1000}}}, ShapeSet{{{4099}}}}, {2});
    batch.add("reduce3_" + name, kiln::trace("reduce_rank3", &g_reduce_rank3),
              {ShapeSet{{{1, 3, 1}}}, ShapeSet{{{2, 3, 7}}}, ShapeSet{{{5, 3, 300}}}});
  }
  for (DType t : {DType::i32, DType::i64}) {
    g_t = t;
    batch.add("reduce_" + std::string(kiln::dtype_name(t)),
              kiln::trace("reduce_int", &g_reduce_int), sizes_2d());
  }
  batch.build();
  batch.check();
}

// Reductions over any axis and several axes, prod, argmax, log_softmax.
kiln::Outputs g_reduce_axes() {
  auto a = kiln::sym("a");
  auto r = kiln::sym("r");
  auto b = kiln::sym("b");
  auto x = kiln::input("x", g_t, {a, r, b});
  std::vector<kiln::Tensor> outs;
  for (bool keep : {false, true}) {
    outs.push_back(kiln::sum(x, 0, keep));                  // first
    outs.push_back(kiln::mean(x, 1, keep));                 // middle
    outs.push_back(kiln::max(x, {0, 2}, keep));             // several, not adjacent
    outs.push_back(kiln::min(x, {-2, -1}, keep));           // several, trailing
    outs.push_back(kiln::sum(x, kiln::all_axes(x), keep));  // all
    outs.push_back(kiln::prod(x, 0, keep));
    outs.push_back(kiln::prod(x, -1, keep));
    outs.push_back(kiln::argmax(x, 0, keep));
    outs.push_back(kiln::argmax(x, 1, keep));
    outs.push_back(kiln::argmax(x, 2, keep));
  }
  outs.push_back(kiln::mean(x, {0, 1}, true));
  outs.push_back(kiln::log_softmax(x, 1));
  outs.push_back(kiln::log_softmax(x, -1));
  outs.push_back(kiln::softmax(x, 0));
  // A pointwise producer and consumer around a middle-axis reduction.
  outs.push_back(kiln::exp(kiln::sum(x * 0.5, 1, true)) + 1.0);
  return kiln::Outputs(outs);
}

kiln::Outputs g_reduce_axes_int() {
  auto a = kiln::sym("a");
  auto r = kiln::sym("r");
  auto b = kiln::sym("b");
  auto x = kiln::input("x", g_t, {a, r, b});  // values in [1, 9]: argmax has ties
  return kiln::Outputs({kiln::sum(x, {0, 2}), kiln::max(x - 5.0, 1, true), kiln::min(x, 0),
                        kiln::prod(x, 0), kiln::argmax(x, 0), kiln::argmax(x, 1, true),
                        kiln::argmax(x - 5.0, 2)});
}

std::vector<ShapeSet> sizes_3d() {
  std::vector<ShapeSet> runs;
  for (const std::vector<int64_t>& s : std::vector<std::vector<int64_t>>{
           {1, 1, 1}, {2, 3, 5}, {7, 13, 3}, {5, 1, 300}, {3, 257, 9}, {1, 1000, 1}, {4, 9, 1}}) {
    runs.push_back(ShapeSet{{s}});
  }
  return runs;
}

TEST(CodegenCpu, ReductionsOverAnyAxes) {
  Batch batch("reduce_axes");
  for (DType t : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    g_t = t;
    batch.add("reduce_axes_" + std::string(kiln::dtype_name(t)),
              kiln::trace("reduce_axes", &g_reduce_axes), sizes_3d(), {2});
  }
  for (DType t : {DType::i32, DType::i64}) {
    g_t = t;
    batch.add("reduce_axes_" + std::string(kiln::dtype_name(t)),
              kiln::trace("reduce_axes_int", &g_reduce_axes_int), sizes_3d(), {4});
  }
  batch.build();
  batch.check();
  EXPECT_GT(batch.checked_outputs, 500u);
}

// Matmul groups: plain, batched (shared B folds into one taller GEMM; A
// shared; both batched), odd sizes around the kernel's 8 x 64 x 256 blocks,
// and each epilogue (scale, bias, relu) with the pointwise consumer after it.
kiln::Outputs g_matmul() {
  auto m = kiln::sym("m");
  auto k = kiln::sym("k");
  auto n = kiln::sym("n");
  auto a = kiln::input("a", g_t, {m, k});
  auto b = kiln::input("b", g_t, {k, n});
  auto x = kiln::input("x", g_t, {3, m, k});
  auto y = kiln::input("y", g_t, {3, k, n});
  auto bias = kiln::input("bias", g_t, {n});
  auto bt = kiln::input("bt", g_t, {n, k});     // B stored transposed
  auto at = kiln::input("at", g_t, {k, m});     // A stored transposed
  auto yt = kiln::input("yt", g_t, {3, n, k});  // batched, transposed
  auto plain = kiln::matmul(a, b);
  auto shared_b = kiln::matmul(x, b);
  auto shared_a = kiln::matmul(a, y);
  auto both = kiln::matmul(x, y);
  auto affine = kiln::relu(kiln::matmul(x, b) * 0.5 + bias);
  auto scaled = kiln::matmul(a, b) / 4.0;
  auto then_pointwise = kiln::tanh(kiln::matmul(a, b) + bias) * 2.0;
  // Transposes of the last two axes fold into the matmul (no index kernel).
  auto trans_b = kiln::matmul(a, kiln::transpose(bt, 0, 1));
  auto trans_a = kiln::relu(kiln::matmul(kiln::transpose(at, -1, -2), b) + bias);
  auto trans_batched = kiln::matmul(x, kiln::transpose(yt, -1, -2));
  return kiln::Outputs({plain, shared_b, shared_a, both, affine, scaled, then_pointwise, trans_b,
                        trans_a, trans_batched});
}

TEST(CodegenCpu, MatmulWithEpilogues) {
  Batch batch("matmul");
  std::vector<ShapeSet> runs;
  for (const auto& [m, k, n] : std::vector<std::array<int64_t, 3>>{
           {1, 1, 1}, {2, 3, 5}, {8, 64, 64}, {9, 257, 65}, {17, 300, 130}, {33, 40, 7}}) {
    runs.push_back(
        ShapeSet{{{m, k}, {k, n}, {3, m, k}, {3, k, n}, {n}, {n, k}, {k, m}, {3, n, k}}});
  }
  // f32 sums of K products in f32 drift from the exact sum by about
  // sqrt(K) * eps * |terms|: beyond f32's 1e-5 absolute tolerance where a
  // result cancels to near zero once K reaches the hundreds (as for any
  // f32 BLAS). f32 therefore runs the shapes with K <= 128; 16-bit results,
  // whose rounding dominates, run them all.
  std::vector<ShapeSet> short_k;
  for (const ShapeSet& r : runs) {
    if (r.input_shapes[0][1] <= 128) short_k.push_back(r);
  }
  for (DType t : {DType::f32, DType::bf16, DType::f16}) {
    g_t = t;
    batch.add("matmul_" + std::string(kiln::dtype_name(t)), kiln::trace("matmul", &g_matmul),
              t == DType::f32 ? short_k : runs, {2});
  }
  batch.build();
  batch.check();
  EXPECT_GE(batch.checked_outputs, 10u * (5u + 7u + 7u));
  // No index kernel: every transpose was folded into its matmul.
  for (DType t : {DType::f32}) {
    g_t = t;
    const auto g = kiln::ir::canonicalize(kiln::trace("matmul", &g_matmul));
    const auto s = kiln::compiler::schedule_graph(g);
    for (const auto& G : s.groups) EXPECT_LT(G.index_of, 0);
  }
}

// Batch dims that broadcast only partly: the graph API expands the operands
// first; the result must still be the interpreter's.
kiln::Outputs g_matmul_partial_batch() {
  auto m = kiln::sym("m");
  auto a = kiln::input("a", g_t, {2, 1, m, 8});
  auto b = kiln::input("b", g_t, {3, 8, 5});
  return kiln::Outputs(
      {kiln::matmul(a, b), kiln::matmul(kiln::transpose(b, -1, -2), kiln::transpose(a, -1, -2))});
}

TEST(CodegenCpu, MatmulOfPartlyBroadcastBatches) {
  Batch batch("matmul_partial");
  for (DType t : {DType::f32, DType::bf16}) {
    g_t = t;
    batch.add("matmul_partial_" + std::string(kiln::dtype_name(t)),
              kiln::trace("matmul_partial", &g_matmul_partial_batch),
              {ShapeSet{{{2, 1, 1, 8}, {3, 8, 5}}}, ShapeSet{{{2, 1, 5, 8}, {3, 8, 5}}}}, {1});
  }
  batch.build();
  batch.check();
  EXPECT_EQ(batch.checked_outputs, 2u * 3u * 2u);
}

// Few outputs over long runs: two launches, partials through temps.
kiln::Outputs g_reduce_split() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto v = kiln::input("v", g_t, {m});
  auto x = kiln::input("x", g_t, {3, m});
  auto y = kiln::input("y", g_t, {n, 1000});
  auto mx = kiln::dtype_is_float(g_t) ? kiln::mean(x, {0, 1}) : kiln::max(x, {0, 1});
  return kiln::Outputs({kiln::sum(v), kiln::max(v, 0, true), kiln::argmax(v), kiln::argmax(x), mx,
                        kiln::sum(y, kiln::all_axes(y)),
                        kiln::min(kiln::abs(y) * 2.0, {0, 1}, true)});
}

TEST(CodegenCpu, SplitReductionsOverLongRuns) {
  Batch batch("reduce_split");
  for (DType t : {DType::f32, DType::bf16, DType::i32}) {
    g_t = t;
    batch.add("reduce_split_" + std::string(kiln::dtype_name(t)),
              kiln::trace("reduce_split", &g_reduce_split),
              {ShapeSet{{{5}, {3, 5}, {1, 1000}}}, ShapeSet{{{70001}, {3, 70001}, {150, 1000}}},
               ShapeSet{{{200003}, {3, 200003}, {7, 1000}}}},
              {1});
  }
  size_t finals = 0;
  for (const auto& c : batch.cases()) {
    for (const auto& k : c.lowered.kernels) finals += k.entry.ends_with("_final") ? 1 : 0;
  }
  // Dynamic: all seven outputs split; static (m = 70001, n = 150): all seven too.
  EXPECT_EQ(finals, 3u * (7 + 7));
  batch.build();
  batch.check();
}

kiln::Outputs g_softmax() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  return kiln::outputs(kiln::softmax(kiln::input("x", g_t, {n, m})));
}

kiln::Outputs g_layernorm() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", g_t, {n, m});
  auto w = kiln::input("w", g_t, {m});
  auto b = kiln::input("b", g_t, {m});
  return kiln::outputs(kiln::layernorm(x, w, b));
}

kiln::Outputs g_rmsnorm() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", g_t, {n, m});
  auto w = kiln::input("w", g_t, {m});
  return kiln::outputs(kiln::rmsnorm(x, w));
}

kiln::Outputs g_gelu_affine() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", g_t, {n, m});
  auto a = kiln::input("a", g_t, {m});
  auto b = kiln::input("b", g_t, {m});
  return kiln::outputs(kiln::gelu(x * a + b));
}

void add_norm_cases(Batch& batch, const std::vector<DType>& dtypes, bool with_static) {
  for (DType t : dtypes) {
    g_t = t;
    const std::string name(kiln::dtype_name(t));
    const std::vector<ShapeSet> one = sizes_2d();
    std::vector<ShapeSet> three;
    three.reserve(one.size());
    for (const ShapeSet& r : one) {
      const auto& s = r.input_shapes[0];
      three.push_back(ShapeSet{{s, {s[1]}, {s[1]}}});
    }
    std::vector<ShapeSet> two;
    two.reserve(three.size());
    for (const ShapeSet& r : three) two.push_back(ShapeSet{{r.input_shapes[0], r.input_shapes[1]}});
    const std::vector<size_t> st = with_static && (t == DType::f32 || t == DType::bf16)
                                       ? std::vector<size_t>{4, 5}
                                       : std::vector<size_t>{};
    batch.add("softmax_" + name, kiln::trace("softmax", &g_softmax), one, st);
    batch.add("layernorm_" + name, kiln::trace("layernorm", &g_layernorm), three, st);
    batch.add("rmsnorm_" + name, kiln::trace("rmsnorm", &g_rmsnorm), two, st);
    batch.add("gelu_affine_" + name, kiln::trace("gelu_affine", &g_gelu_affine), three);
  }
}

TEST(CodegenCpu, SoftmaxLayernormRmsnormGelu) {
  Batch batch("norms");
  add_norm_cases(batch, {DType::f32, DType::f64, DType::bf16, DType::f16}, true);
  batch.build();
  batch.check();
  // Each of these is one kernel.
  for (const Case& c : batch.cases()) EXPECT_EQ(c.lowered.kernels.size(), 1u) << c.label;
}

// gelu's f32 helper is a clamped rational erf (no exp): a dense sweep of
// inputs (steps of 1/256 over [-12, 12], both sides of the clamp at 5.42,
// values near 0, large |x|, inf and nan) against the interpreter, in every
// float dtype, on the best and the baseline target. f32 must stay well inside
// its tolerance (the approximation's absolute error is below 1e-6).
kiln::Outputs g_gelu_1d() {
  auto n = kiln::sym("n");
  return kiln::outputs(kiln::gelu(kiln::input("x", g_t, {n})));
}

std::vector<double> gelu_sweep_values() {
  std::vector<double> v;
  for (int i = -12 * 256; i <= 12 * 256; ++i) v.push_back(i / 256.0);
  for (double c : {5.41998291, 5.4199, 5.4201, 3.8325, 1e-45, 1e-38, 1e-30, 1e-7, 1e-3, 0.3, 17.5,
                   100.0, 1e4, 1e30, 3.4e38}) {
    v.push_back(c);
    v.push_back(-c);
  }
  v.push_back(-0.0);
  v.push_back(INFINITY);
  v.push_back(-INFINITY);
  v.push_back(NAN);
  return v;
}

TEST(CodegenCpu, GeluDenseSweep) {
  for (const std::string& arch : {kArch, std::string("x86-64")}) {
    Batch batch(arch == "x86-64" ? "gelu_sweep_base" : "gelu_sweep", arch);
    const std::vector<DType> dtypes = {DType::f32, DType::f64, DType::bf16, DType::f16};
    for (DType t : dtypes) {
      g_t = t;
      batch.add(std::string("gelu_") + std::string(kiln::dtype_name(t)),
                kiln::trace("gelu_1d", &g_gelu_1d), {});
    }
    batch.build();
    const std::vector<double> sweep = gelu_sweep_values();
    for (size_t i = 0; i < dtypes.size(); ++i) {
      SCOPED_TRACE(arch + " " + std::string(kiln::dtype_name(dtypes[i])));
      HostTensor x;
      x.dtype = dtypes[i];
      x.shape = {static_cast<int64_t>(sweep.size())};
      for (double v : sweep) x.values.push_back(kiln::compiler::round_to_dtype(v, x.dtype));
      const auto want = kiln::compiler::interpret(batch.cases()[i].graph, {x});
      const auto got = batch.run_case(i, {x});
      ASSERT_EQ(got.size(), 1u);
      double worst = 0;
      EXPECT_TRUE(kiln::compiler::all_close(got[0], want[0], kiln::compiler::tolerance_for(x.dtype),
                                            &worst))
          << "worst error/tolerance " << worst;
      std::printf("[gelu_sweep] %s %s: %zu values, worst error/tolerance %.3g\n", arch.c_str(),
                  std::string(kiln::dtype_name(x.dtype)).c_str(), sweep.size(), worst);
      if (x.dtype == DType::f32) {
        EXPECT_LT(worst, 0.25);
        // The f32 gelu's documented accuracy (docs/codegen.md), which the GPU
        // output check (tests/gpu/torch_peer.py) and the differential
        // generator both allow: within 2e-6 absolute of the interpreter for
        // finite |x| <= 64.
        double worst_abs = 0;
        for (size_t k = 0; k < sweep.size(); ++k) {
          if (std::isfinite(want[0].values[k]) && std::fabs(x.values[k]) <= 64) {
            worst_abs = std::max(worst_abs, std::fabs(got[0].values[k] - want[0].values[k]));
          }
        }
        EXPECT_LE(worst_abs, 2e-6);
        std::printf("[gelu_sweep] %s f32: worst absolute error %.3g for |x| <= 64\n", arch.c_str(),
                    worst_abs);
      }
      // inf stays inf; -inf gives nan, as 0.5 x (1 + erf(x / sqrt(2))) does.
      const size_t n = sweep.size();
      EXPECT_EQ(got[0].values[n - 3], INFINITY);
      EXPECT_TRUE(std::isnan(got[0].values[n - 2]));
      EXPECT_TRUE(std::isnan(got[0].values[n - 1]));
    }
  }
}

// The baseline target compiles without libmvec (see cpu_compile_flags).
TEST(CodegenCpu, BaselineArchWithoutVectorMath) {
  Batch batch("baseline", "x86-64");
  add_norm_cases(batch, {DType::f32, DType::bf16}, false);
  g_t = DType::bf16;
  batch.add("unary_bf16", kiln::trace("unary_float", &g_unary_float), sizes_2d());
  batch.build();
  batch.check();
}

// Several groups: temps between kernels, a reduction over a reduction, a
// copy of an input, a constant output, one node returned twice.
kiln::Outputs g_multi() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", DType::f32, {n, m});
  auto rows = kiln::sum(x, -1);                        // [n]
  auto total = kiln::max(kiln::exp(rows * 0.01), -1);  // []
  auto col = kiln::sum(x, -1, true);
  auto y = (x - col / 3.0) * total;      // reads a temp scalar
  auto z = kiln::mean(y * y, -1, true);  // [n, 1]
  return kiln::Outputs({y, total, x, kiln::constant(1.5), z, y, kiln::cast(rows, DType::bf16)})
      .named({"y", "total", "x_copy", "c", "z", "y_again", "rows16"});
}

kiln::Outputs g_square_bcast() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", DType::f32, {n, n});
  auto s = kiln::sum(x, -1);  // [n], broadcast along the last dim of [n, n]
  return kiln::outputs(x * s, kiln::softmax(x * s));
}

// Rank-0 computed values, and an inlinable node that is both an output (its
// own kernel) and recomputed inside another group.
kiln::Outputs g_scalars_inline() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", DType::f32, {n, m});
  auto s = kiln::input("s", DType::f32, {});
  auto w = kiln::input("w", DType::f32, {m});
  auto cw = kiln::sigmoid(w * 2.0);
  auto e = kiln::exp(s) * 2.0;
  return kiln::Outputs(
      {e, cw, x * cw + e, kiln::sum(x * cw, -1) * e, kiln::neg(kiln::constant(3.0))});
}

TEST(CodegenCpu, MultiGroupGraphs) {
  Batch batch("multi");
  std::vector<ShapeSet> runs;
  for (auto [n, m] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 13}, {33, 1}, {65, 257}}) {
    runs.push_back(ShapeSet{{{n, m}}});
  }
  batch.add("multi", kiln::ir::canonicalize(kiln::trace("multi", &g_multi)), runs, {1});
  batch.add("square_bcast", kiln::ir::canonicalize(kiln::trace("square_bcast", &g_square_bcast)),
            {ShapeSet{{{1, 1}}}, ShapeSet{{{5, 5}}}, ShapeSet{{{40, 40}}}}, {1});
  batch.add(
      "scalars_inline", kiln::ir::canonicalize(kiln::trace("scalars_inline", &g_scalars_inline)),
      {ShapeSet{{{1, 1}, {}, {1}}}, ShapeSet{{{7, 13}, {}, {13}}}, ShapeSet{{{3, 300}, {}, {300}}}},
      {1});
  batch.build();
  batch.check();
  EXPECT_GE(batch.cases()[0].lowered.kernels.size(), 4u);
  int temps = 0;
  for (const auto& b : batch.cases()[0].lowered.buffers)
    temps += b.role == kiln::compiler::BufferRole::temp;
  EXPECT_GE(temps, 1);
}

// ---------------------------------------------------------------------------
// Shape ops: views (reshape aliases, expand broadcasts) and index groups
// (permute, slice, concat, gather, iota), in every dtype, on symbolic and
// static shapes. Integer inputs hold [1, 9], so `ids - 5` indexes from the
// end and `ids + 3` past it (the fill value).

kiln::Outputs g_views() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", g_t, {n, 6});
  auto w = kiln::input("w", g_t, {6});
  auto a = x * 2.0;                                    // computed: its buffer is aliased
  auto r = kiln::reshape(a, {n, 3, 2});                // a view of a, read by a reduction
  auto u = kiln::unsqueeze(x, 1);                      // a view of an input
  auto e = kiln::expand(w, {n, 6});                    // a broadcast, recomputed where read
  auto m = kiln::max(x, -1, true);                     // [n, 1]
  auto em = kiln::broadcast_to(m, {n, 6});             // a broadcast of a row value, fused
  auto s = kiln::squeeze(kiln::sum(r, -1, true), -1);  // [n, 3]
  return kiln::Outputs({r, kiln::max(r, -1), u + 1.0, e, x * e, kiln::reshape(x, {n, 2, 3}), x - em,
                        s, kiln::reshape(s, {3, n}) * 2.0, kiln::unsqueeze(m, 0)});
}

kiln::Outputs g_index() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", g_t, {n, m, 5});
  auto t = kiln::input("t", g_t, {7, m});
  auto ids = kiln::input("ids", DType::i32, {n});
  auto k = kiln::input("k", DType::i64, {2, 3});
  auto y = x * 2.0;  // inlinable: computed inside the index kernels that read it
  return kiln::Outputs(
      {kiln::transpose(x, 0, 1), kiln::transpose(x, 1, 2), kiln::permute(y, {2, 0, 1}),
       kiln::slice(x, 2, 1, 5, 2), kiln::slice(x, -1, -1, 100) + 1.0,
       kiln::concat({x, kiln::slice(y, 2, 0, 2), x}, 2),
       kiln::concat({kiln::transpose(x, 0, 1), kiln::transpose(y, 0, 1)}, 2),
       kiln::embedding(t, ids - 5), kiln::embedding(t, ids + 3), kiln::gather(x, k, 2),
       kiln::gather(x, k - 7, -1), kiln::iota({n, m}, 1, g_t) + kiln::iota({n, 1}, 0, g_t)});
}

kiln::Outputs g_index_any() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", g_t, {n, 3, 4});
  auto ids = kiln::input("ids", DType::i64, {n});
  auto v = kiln::input("v", g_t, {4});
  // A causal mask over [n, n] (the attention example's).
  auto causal = kiln::where(kiln::iota({n, 1}, 0) >= kiln::iota({1, n}, 1), kiln::sum(x, {1, 2}),
                            kiln::constant(-100.0, g_t));
  return kiln::Outputs({kiln::transpose(x, 0, 2), kiln::slice(x, 1, 1, 3), kiln::concat({x, x}, 1),
                        kiln::gather(x, ids - 3, 1),
                        kiln::gather(v, kiln::constant(-1, DType::i32)),
                        kiln::reshape(kiln::transpose(x, 1, 2), {n, 12}), causal});
}

std::vector<ShapeSet> index_sizes(bool with_v = false) {
  std::vector<ShapeSet> runs;
  // m = 9000: rows longer than a work item's block of 4096.
  for (auto [n, m] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 13}, {33, 1}, {3, 257}, {2, 9000}}) {
    if (with_v) {
      runs.push_back(ShapeSet{{{n, 3, 4}, {n}, {4}}});
    } else {
      runs.push_back(ShapeSet{{{n, m, 5}, {7, m}, {n}, {2, 3}}});
    }
  }
  return runs;
}

TEST(CodegenCpu, ViewsAliasOrBroadcastWithoutCopies) {
  Batch batch("views");
  std::vector<ShapeSet> runs;
  for (int64_t n : {1, 2, 37, 1000}) runs.push_back(ShapeSet{{{n, 6}, {6}}});
  for (DType t : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64}) {
    g_t = t;
    batch.add("views_" + std::string(kiln::dtype_name(t)),
              kiln::ir::canonicalize(kiln::trace("views", &g_views)), runs, {2});
  }
  // Only the outputs that are views (a reshape of an input or of a computed
  // node) are copies; no kernel copies a view anywhere else.
  for (const auto& c : batch.cases()) {
    size_t copies = 0;
    for (const auto& k : c.lowered.kernels) {
      copies += k.source.find("// Copy of node") != std::string::npos ? 1 : 0;
    }
    EXPECT_EQ(copies, 3u) << c.label;  // r, reshape(x, ...) and s
  }
  batch.build();
  batch.check();
}

TEST(CodegenCpu, IndexKernelsPermuteSliceConcatGatherIota) {
  Batch batch("index");
  for (DType t : {DType::f32, DType::bf16, DType::f16, DType::f64, DType::i32, DType::i64}) {
    g_t = t;
    const std::string name(kiln::dtype_name(t));
    batch.add("index_" + name, kiln::ir::canonicalize(kiln::trace("index", &g_index)),
              index_sizes(), {1});
    batch.add("index_any_" + name, kiln::ir::canonicalize(kiln::trace("index_any", &g_index_any)),
              index_sizes(true), {2});
  }
  batch.build();
  batch.check();
  EXPECT_EQ(batch.checked_outputs, 6u * (12 * 6 + 7 * 6));
}

// An index out of [-V, V) never reads out of bounds: it gives the fill value
// (NaN, the lowest integer, true), as the interpreter does.
kiln::Outputs g_gather_fill() {
  auto n = kiln::sym("n");
  auto f = kiln::input("f", DType::f32, {5, 3});
  auto h = kiln::input("h", DType::bf16, {5});
  auto i = kiln::input("i", DType::i32, {5});
  auto l = kiln::input("l", DType::i64, {5});
  auto b = kiln::input("b", DType::boolean, {5});
  auto ids = kiln::input("ids", DType::i64, {n});
  return kiln::outputs(kiln::embedding(f, ids), kiln::gather(h, ids), kiln::gather(i, ids),
                       kiln::gather(l, ids), kiln::gather(b, ids));
}

TEST(CodegenCpu, GatherOutOfRangeGivesTheFillValue) {
  Batch batch("gather_fill");
  const Graph g = kiln::trace("gather_fill", &g_gather_fill);
  batch.add("gather_fill", g, {});
  batch.build();
  std::mt19937_64 rng(5);
  std::vector<HostTensor> inputs;
  for (size_t k = 0; k + 1 < g.inputs.size(); ++k) {
    const auto& node = g.node(g.inputs[k]);
    std::vector<int64_t> shape;
    for (const auto& d : node.shape) shape.push_back(d.value);
    inputs.push_back(kiln::compiler::random_tensor(node.dtype, shape, rng));
  }
  const std::vector<double> ids = {0, 4, -1, -5, 5, -6, 1LL << 40, -(1LL << 40), 2};
  inputs.push_back(HostTensor{DType::i64, {static_cast<int64_t>(ids.size())}, ids});
  const auto got = batch.run_case(0, inputs);
  const auto want = kiln::compiler::interpret(g, inputs);
  ASSERT_EQ(got.size(), 5u);
  for (size_t o = 0; o < got.size(); ++o) {
    EXPECT_TRUE(
        kiln::compiler::all_close(got[o], want[o], kiln::compiler::tolerance_for(want[o].dtype)))
        << o;
  }
  // Positions 4 .. 7 are out of range.
  for (size_t p = 0; p < ids.size(); ++p) {
    const bool out = p >= 4 && p <= 7;
    EXPECT_EQ(std::isnan(got[0].values[p * 3]), out) << p;
    EXPECT_EQ(std::isnan(got[1].values[p]), out) << p;
    if (out) {
      EXPECT_EQ(got[2].values[p], -2147483648.0) << p;
      EXPECT_EQ(got[3].values[p], -9223372036854775808.0) << p;
      EXPECT_EQ(got[4].values[p], 1.0) << p;
    }
  }
}

// 16-bit conversions: every f16 and bf16 value to f32, and f32 values at,
// between (ties) and next to every f16 value to f16 and bf16, exactly as the
// interpreter rounds (nearest even, subnormals, overflow to inf, NaN).
kiln::Outputs g_convert16() {
  auto n = kiln::sym("n");
  auto m = kiln::sym("m");
  auto x = kiln::input("x", DType::f32, {n});
  auto h = kiln::input("h", DType::f16, {m});
  auto b = kiln::input("b", DType::bf16, {m});
  return kiln::Outputs({kiln::cast(x, DType::f16), kiln::cast(x, DType::bf16),
                        kiln::cast(h, DType::f32), kiln::cast(b, DType::f32),
                        kiln::cast(h, DType::f64), kiln::cast(b, DType::f16)});
}

TEST(CodegenCpu, SixteenBitConversionsAreExact) {
  Batch batch("convert16");
  const Graph g = kiln::trace("convert16", &g_convert16);
  batch.add("convert16", g, {});
  batch.build();
  HostTensor x{DType::f32, {}, {}};
  HostTensor h{DType::f16, {65536}, {}};
  HostTensor b{DType::bf16, {65536}, {}};
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const auto u = static_cast<uint16_t>(bits);
    h.values.push_back(HostTensor::from_bytes(DType::f16, {1}, &u).values[0]);
    b.values.push_back(HostTensor::from_bytes(DType::bf16, {1}, &u).values[0]);
  }
  for (uint32_t bits = 0; bits < 0x7c00; ++bits) {
    const double v = h.values[bits];
    const double next = h.values[bits + 1];
    for (double sign : {1.0, -1.0}) {
      const float mid = static_cast<float>((v + next) / 2);
      for (float f :
           {static_cast<float>(v), mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
        x.values.push_back(sign * f);
      }
    }
  }
  for (double v :
       {65504.0, 65519.0, 65520.0, 65536.0, 1e10, 3.4e38, static_cast<double>(INFINITY),
        static_cast<double>(-INFINITY), static_cast<double>(NAN), 1e-8, 2.9e-8, 3.0e-8, 1e-30}) {
    x.values.push_back(v);
    x.values.push_back(-v);
  }
  x.shape = {static_cast<int64_t>(x.values.size())};
  const std::vector<HostTensor> inputs = {x, h, b};
  const auto want = kiln::compiler::interpret(g, inputs);
  const auto got = batch.run_case(0, inputs);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    double worst = 0;
    EXPECT_TRUE(kiln::compiler::all_close(got[k], want[k], {0, 0}, &worst))
        << "output " << k << " worst " << worst;
    // Bit-exact, NaN payloads aside.
    const auto gb = got[k].to_bytes();
    const auto wb = want[k].to_bytes();
    EXPECT_EQ(gb, wb) << "output " << k;
  }
}

// ---------------------------------------------------------------------------
// Source-level properties.

kiln::Outputs g_sin_chain() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", DType::f32, {n});
  auto y = x;
  for (int i = 0; i < 10000; ++i) y = kiln::sin(y);
  return kiln::outputs(y);
}

TEST(CodegenCpu, TenThousandSinChainCompilesAndRuns) {
  Batch batch("sin_chain");
  const Graph g = kiln::ir::canonicalize(kiln::trace("sin_chain", &g_sin_chain));
  batch.add("sin_chain", g, {ShapeSet{{{1}}}, ShapeSet{{{37}}}});
  ASSERT_EQ(batch.kernel_count(), 1u);
  const auto t0 = std::chrono::steady_clock::now();
  batch.build();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("10,000-sin kernel: %zu bytes of source, built in %.2f s\n",
              batch.cases()[0].lowered.kernels[0].source.size(), secs);
  batch.check();
}

kiln::Outputs g_det() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", DType::bf16, {n, 64});
  auto w = kiln::input("w", DType::bf16, {64});
  auto y = kiln::rmsnorm(x, w);
  return kiln::outputs(y, kiln::softmax(y), kiln::sum(kiln::cast(y, DType::f32), -1));
}

TEST(CodegenCpu, LoweringIsDeterministic) {
  const Graph g = kiln::ir::canonicalize(kiln::trace("det", &g_det));
  kiln::compiler::CpuCodegenOptions o;
  o.entry_prefix = "kiln_det_0123";
  for (const kiln::ir::SymbolValues& sv : {kiln::ir::SymbolValues{-1}, kiln::ir::SymbolValues{8}}) {
    const auto a = kiln::compiler::lower_cpu(g, sv, o);
    const auto b =
        kiln::compiler::lower_cpu(kiln::ir::canonicalize(kiln::trace("det", &g_det)), sv, o);
    ASSERT_EQ(a.kernels.size(), b.kernels.size());
    for (size_t i = 0; i < a.kernels.size(); ++i) {
      EXPECT_EQ(a.kernels[i].entry, b.kernels[i].entry);
      EXPECT_EQ(a.kernels[i].source, b.kernels[i].source);
      EXPECT_EQ(a.kernels[i].entry, "kiln_det_0123_k" + std::to_string(i));
    }
    ASSERT_EQ(a.launches.size(), b.launches.size());
    for (size_t i = 0; i < a.launches.size(); ++i) {
      EXPECT_EQ(a.launches[i].buffers, b.launches[i].buffers);
      EXPECT_EQ(a.launches[i].work_items, b.launches[i].work_items);
    }
  }
}

kiln::Outputs g_symbolic_inner() {
  auto n = kiln::sym("n");
  auto x = kiln::input("x", DType::f32, {3, n});
  return kiln::outputs(kiln::softmax(x));
}

TEST(CodegenCpu, StaticSpecializationUsesLiterals) {
  {
    const Graph g = kiln::ir::canonicalize(kiln::trace("symbolic_inner", &g_symbolic_inner));
    kiln::compiler::CpuCodegenOptions o;
    o.entry_prefix = "k";
    const auto dyn = kiln::compiler::lower_cpu(g, {-1}, o);
    const auto st = kiln::compiler::lower_cpu(g, {100}, o);
    EXPECT_NE(dyn.kernels[0].source.find("const int64_t s0 = args->symbols[0];"),
              std::string::npos);
    EXPECT_NE(dyn.kernels[0].source.find("const int64_t C = s0;"), std::string::npos);
    EXPECT_EQ(st.kernels[0].source.find("args->symbols"), std::string::npos);
    EXPECT_NE(st.kernels[0].source.find("const int64_t C = 100;"), std::string::npos);
    EXPECT_EQ(dyn.launches[0].item_cost.evaluate({7}), 7);
    EXPECT_EQ(st.launches[0].item_cost.evaluate({}), 100);
    EXPECT_EQ(dyn.launches[0].work_items.evaluate({7}), 3);
  }
  const Graph g = kiln::ir::canonicalize(kiln::trace("det", &g_det));
  kiln::compiler::CpuCodegenOptions o;
  o.entry_prefix = "k";
  const auto dyn = kiln::compiler::lower_cpu(g, {-1}, o);
  const auto st = kiln::compiler::lower_cpu(g, {8}, o);
  EXPECT_TRUE(st.launches[0].work_items.is_constant());
  EXPECT_EQ(st.launches[0].work_items.evaluate({}), 8);
  EXPECT_FALSE(dyn.launches[0].work_items.is_constant());
  EXPECT_EQ(dyn.launches[0].work_items.evaluate({5}), 5);
  EXPECT_EQ(dyn.launches[0].item_cost.evaluate({5}), 64);
  // Buffers: inputs in order, outputs in order, then temps.
  ASSERT_GE(dyn.buffers.size(), 5u);
  EXPECT_EQ(dyn.buffers[0].role, kiln::compiler::BufferRole::input);
  EXPECT_EQ(dyn.buffers[1].role, kiln::compiler::BufferRole::input);
  EXPECT_EQ(dyn.buffers[2].role, kiln::compiler::BufferRole::output);
  EXPECT_EQ(dyn.buffers[4].role, kiln::compiler::BufferRole::output);
  EXPECT_EQ(dyn.buffers[4].index, 2u);
  EXPECT_EQ(st.buffers[0].numel.evaluate({}), 8 * 64);
}

TEST(CodegenCpu, GeneratedSourceRepeatsTheAbiStructVerbatim) {
  std::ifstream in(std::string(KILN_TEST_SOURCE_DIR) + "/schemas/include/kiln/abi/cpu_kernel.h");
  ASSERT_TRUE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string header = ss.str();
  auto extract = [](const std::string& text) {
    const size_t b = text.find("typedef struct KilnCpuKernelArgs {");
    const size_t e = text.find("} KilnCpuKernelArgs;");
    if (b == std::string::npos || e == std::string::npos) return std::string();
    return text.substr(b, e + std::strlen("} KilnCpuKernelArgs;") - b);
  };
  const std::string want = extract(header);
  ASSERT_FALSE(want.empty());
  const Graph g = kiln::ir::canonicalize(kiln::trace("det", &g_det));
  kiln::compiler::CpuCodegenOptions o;
  o.entry_prefix = "k";
  for (const auto& k : kiln::compiler::lower_cpu(g, {-1}, o).kernels) {
    EXPECT_EQ(extract(k.source), want);
    EXPECT_NE(
        k.source.find("extern \"C\" __attribute__((visibility(\"default\"))) void " + k.entry +
                      "(const KilnCpuKernelArgs* args, int64_t begin, int64_t end)"),
        std::string::npos);
    // Only the C headers the contract allows.
    std::istringstream lines(k.source);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("#include", 0) == 0) {
        EXPECT_TRUE(line == "#include <stdint.h>" || line == "#include <math.h>" ||
                    line == "#include <string.h>")
            << line;
      }
    }
  }
}

TEST(CodegenCpu, CompileFlags) {
  const auto f = kiln::compiler::cpu_compile_flags("x86-64-v3");
  auto has = [&](const std::string& s) { return std::find(f.begin(), f.end(), s) != f.end(); };
  EXPECT_TRUE(has("-march=x86-64-v3"));
  EXPECT_TRUE(has("-fveclib=libmvec"));
  EXPECT_TRUE(has("-fno-math-errno"));
  EXPECT_FALSE(has("-ffast-math"));
  EXPECT_THROW(kiln::compiler::cpu_compile_flags("pentium"), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// The Ninja driver.

kiln::compiler::NinjaBuildRequest small_request(const std::string& lib, const std::string& work) {
  kiln::compiler::NinjaBuildRequest req;
  req.work_dir = work_root() / work;
  req.cxx = KILN_TEST_CLANGXX;
  req.ninja = KILN_TEST_NINJA;
  req.jobs = 2;
  kiln::compiler::SharedLibraryBuild l;
  l.name = lib;
  l.sources.push_back({"abi.cpp", kiln::compiler::cpu_abi_source()});
  l.sources.push_back(
      {"k0.cpp",
       "extern \"C\" __attribute__((visibility(\"default\"))) int k0(void) { return 7; }\n"});
  l.sources.push_back(
      {"k1.cpp",
       "extern \"C\" __attribute__((visibility(\"default\"))) int k1(void) { return 8; }\n"});
  l.cxx_flags = kiln::compiler::cpu_compile_flags(kArch);
  l.link_flags = {"-shared", "-lmvec", "-lm"};
  req.libraries.push_back(l);
  return req;
}

fs::file_time_type mtime(const fs::path& p) { return fs::last_write_time(p); }

TEST(NinjaDriver, CompileErrorNamesTheSourceFile) {
  auto req = small_request("broken", "ninja_error");
  req.libraries[0].sources.push_back(
      {"kiln_broken_k3.cpp", "int f() { return undeclared_thing; }\n"});
  try {
    kiln::compiler::run_ninja_build(req);
    FAIL() << "expected a CompileError";
  } catch (const kiln::compiler::CompileError& e) {
    EXPECT_NE(std::string(e.what()).find("kiln_broken_k3.cpp"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("undeclared_thing"), std::string::npos) << e.what();
    EXPECT_EQ(fs::path(e.source_file()).filename(), "kiln_broken_k3.cpp");
    EXPECT_TRUE(fs::path(e.source_file()).is_absolute());
    EXPECT_NE(e.compiler_output().find("error"), std::string::npos);
  }
}

TEST(NinjaDriver, UnchangedKernelsAreNotRebuilt) {
  const fs::path dir = work_root() / "ninja_incremental";
  fs::remove_all(dir);
  auto req = small_request("inc", "ninja_incremental");
  const auto libs = kiln::compiler::run_ninja_build(req);
  ASSERT_EQ(libs.size(), 1u);
  ASSERT_TRUE(fs::exists(libs[0]));
  EXPECT_EQ(libs[0], dir / "inc" / "inc.so");
  const auto so1 = mtime(libs[0]);
  const auto o0 = mtime(dir / "inc" / "k0.o");
  const auto o1 = mtime(dir / "inc" / "k1.o");
  const auto ninja_file = mtime(dir / "build.ninja");

  // Same request again: nothing is rewritten or rebuilt.
  kiln::compiler::run_ninja_build(req);
  EXPECT_EQ(mtime(libs[0]), so1);
  EXPECT_EQ(mtime(dir / "inc" / "k0.o"), o0);
  EXPECT_EQ(mtime(dir / "inc" / "k1.o"), o1);
  EXPECT_EQ(mtime(dir / "build.ninja"), ninja_file);

  // Change k1 only, drop nothing: k0's object stays.
  req.libraries[0].sources[2].contents =
      "extern \"C\" __attribute__((visibility(\"default\"))) int k1(void) { return 9; }\n";
  kiln::compiler::run_ninja_build(req);
  EXPECT_EQ(mtime(dir / "inc" / "k0.o"), o0);
  EXPECT_NE(mtime(dir / "inc" / "k1.o"), o1);

  // Drop k1: its source and object go, and the library no longer has it.
  req.libraries[0].sources.pop_back();
  const auto again = kiln::compiler::run_ninja_build(req);
  EXPECT_FALSE(fs::exists(dir / "inc" / "k1.o"));
  EXPECT_FALSE(fs::exists(dir / "inc" / "k1.cpp"));
  EXPECT_TRUE(fs::exists(dir / "inc" / "k0.o"));
  void* h = dlopen(again[0].c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  EXPECT_EQ(dlsym(h, "k1"), nullptr);
  auto k0 = reinterpret_cast<int (*)()>(dlsym(h, "k0"));
  ASSERT_NE(k0, nullptr);
  EXPECT_EQ(k0(), 7);
  dlclose(h);
}

// A shell command line holds at most 128 KiB (MAX_ARG_STRLEN): a package
// of 10,000 graphs has 10,000 objects, so the link reads them from a
// response file. (tests/bench/run.sh builds that package; a unit test that
// reaches the limit would compile thousands of kernels.)
TEST(NinjaDriver, TheLinkReadsItsObjectsFromAResponseFile) {
  const fs::path dir = work_root() / "ninja_rsp";
  fs::remove_all(dir);
  auto req = small_request("rsp", "ninja_rsp");
  const auto libs = kiln::compiler::run_ninja_build(req);
  ASSERT_TRUE(fs::exists(libs[0]));
  std::ifstream in(dir / "build.ninja");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("command = $cxx -o $out @$out.rsp $ldflags"), std::string::npos) << text;
  EXPECT_NE(text.find("rspfile_content = $in"), std::string::npos) << text;
}

TEST(NinjaDriver, MissingNinjaIsARuntimeError) {
  auto req = small_request("nope", "ninja_missing");
  req.ninja = "/nonexistent/ninja";
  EXPECT_THROW(kiln::compiler::run_ninja_build(req), std::runtime_error);
}

}  // namespace
