// Guards and dispatch on a real CPU package: selection order, each guard
// kind's mismatch message, stances, the JIT hook and the miss counters.
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "kiln/jit.h"
#include "kiln/manifest_text.h"
#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "test_support/cpu_test_package.h"

namespace {

using kiln::DType;
using kiln::ErrorCode;
using kiln::GuardFailure;
using kiln::TensorView;
namespace fb = kiln::fb;

struct Buffers {
  explicit Buffers(int64_t rows) : x(rows * 64 + 16), w(64), y(rows * 64 + 16) {
    std::mt19937 rng(static_cast<uint32_t>(rows));
    std::uniform_real_distribution<float> dist(0.5f, 2.0f);
    for (float& v : x) v = dist(rng);
    for (float& v : w) v = dist(rng);
  }
  alignas(64) std::vector<float> x, w, y;
};

class GuardTest : public ::testing::Test {
 protected:
  void open(const std::vector<kiln_test::TestGraphOptions>& graphs = {{}},
            kiln::Stance stance = kiln::Stance::fail_on_recompile) {
    bytes_ = kiln_test::make_test_package(graphs);
    package_ = std::make_unique<kiln::Package>(
        kiln::Package::open_memory(kiln_test::as_bytes(bytes_), {.stance = stance}));
  }
  kiln::Graph& graph() { return package_->graph("scale_add"); }

  // The failures of a call expected to miss under fail_on_recompile.
  std::vector<GuardFailure> miss(const TensorView& x, const TensorView& w, const TensorView& y) {
    try {
      graph().call({x, w}, {y});
    } catch (const kiln::RecompileError& e) {
      EXPECT_EQ(e.code(), ErrorCode::recompile_required);
      last_message_ = e.what();
      return e.failures();
    }
    ADD_FAILURE() << "the call ran";
    return {};
  }

  static bool has(const std::vector<GuardFailure>& failures, const std::string& spec,
                  const std::string& subject, const std::string& expected,
                  const std::string& actual) {
    for (const auto& f : failures) {
      if (f.specialization == spec && f.subject == subject && f.expected == expected &&
          f.actual == actual) {
        return true;
      }
    }
    return false;
  }

  std::vector<uint8_t> bytes_;
  std::unique_ptr<kiln::Package> package_;
  std::string last_message_;
};

TEST_F(GuardTest, SelectsTheMostSpecificPassingSpecialization) {
  open();
  Buffers b(8);
  TensorView x(b.x.data(), DType::f32, {8, 64}), w(b.w.data(), DType::f32, {64}),
      y(b.y.data(), DType::f32, {8, 64});
  const DLTensor* in[] = {&x.dl(), &w.dl()};
  const DLTensor* out[] = {&y.dl()};
  EXPECT_EQ(graph().select(in, out), "n=8");
  TensorView x5(b.x.data(), DType::f32, {5, 64}), y5(b.y.data(), DType::f32, {5, 64});
  const DLTensor* in5[] = {&x5.dl(), &w.dl()};
  const DLTensor* out5[] = {&y5.dl()};
  EXPECT_EQ(graph().select(in5, out5), "general");
  EXPECT_EQ(graph().counters().calls, 0u);  // select() launches and counts nothing
  graph().call({x5, w}, {y5});
  for (int64_t i = 0; i < 5 * 64; ++i) ASSERT_FLOAT_EQ(b.y[i], 2 * b.x[i] + b.w[i % 64]);
}

TEST_F(GuardTest, DTypeMismatch) {
  open();
  Buffers b(8);
  auto f =
      miss(TensorView(b.x.data(), DType::f16, {8, 64}), TensorView(b.w.data(), DType::f32, {64}),
           TensorView(b.y.data(), DType::f32, {8, 64}));
  EXPECT_TRUE(has(f, "n=8", "x.dtype", "f32", "f16"));
  EXPECT_TRUE(has(f, "general", "x.dtype", "f32", "f16"));
  EXPECT_EQ(f.size(), 2u);
  EXPECT_NE(last_message_.find("general: x.dtype: expected f32, got f16"), std::string::npos)
      << last_message_;
  EXPECT_NE(last_message_.find("'scale_add'"), std::string::npos);
  EXPECT_NE(last_message_.find("fail_on_recompile"), std::string::npos);
}

TEST_F(GuardTest, DeviceMismatch) {
  open();
  Buffers b(8);
  int64_t shape[] = {8, 64};
  TensorView x(b.x.data(), DType::f32, shape, {}, DLDevice{kDLCUDA, 1});
  auto f = miss(x, TensorView(b.w.data(), DType::f32, {64}),
                TensorView(b.y.data(), DType::f32, {8, 64}));
  EXPECT_TRUE(has(f, "general", "x.device", "cpu", "cuda:1"));
}

TEST_F(GuardTest, RankMismatch) {
  open();
  Buffers b(8);
  auto f =
      miss(TensorView(b.x.data(), DType::f32, {8 * 64}), TensorView(b.w.data(), DType::f32, {64}),
           TensorView(b.y.data(), DType::f32, {8, 64}));
  EXPECT_TRUE(has(f, "general", "x.rank", "2", "1"));
  EXPECT_TRUE(has(f, "general", "x.shape[1]", "64", "nothing (rank 1)"));
}

TEST_F(GuardTest, StaticDimMismatch) {
  open();
  Buffers b(8);
  auto f =
      miss(TensorView(b.x.data(), DType::f32, {8, 63}), TensorView(b.w.data(), DType::f32, {64}),
           TensorView(b.y.data(), DType::f32, {8, 64}));
  EXPECT_TRUE(has(f, "general", "x.shape[1]", "64", "63"));
  EXPECT_TRUE(has(f, "n=8", "x.shape[1]", "64", "63"));
}

TEST_F(GuardTest, SymbolRangeMismatch) {
  kiln_test::TestGraphOptions o;
  o.n_max = 100;
  open({o});
  Buffers b(101);
  auto f =
      miss(TensorView(b.x.data(), DType::f32, {101, 64}), TensorView(b.w.data(), DType::f32, {64}),
           TensorView(b.y.data(), DType::f32, {101, 64}));
  EXPECT_TRUE(has(f, "general", "symbol n", "in [1, 100]", "101"));
  // The static specialization fixes n = 8: x.shape[0] must equal it.
  EXPECT_TRUE(has(f, "n=8", "x.shape[0]", "n = 8 (fixed by this specialization)", "101"));
}

TEST_F(GuardTest, SymbolEqualityAcrossTensors) {
  open();
  Buffers b(9);
  auto f =
      miss(TensorView(b.x.data(), DType::f32, {8, 64}), TensorView(b.w.data(), DType::f32, {64}),
           TensorView(b.y.data(), DType::f32, {9, 64}));
  EXPECT_TRUE(has(f, "general", "y.shape[0]", "n = 8 (from x.shape[0])", "9"));
  EXPECT_NE(last_message_.find("y.shape[0]: expected n = 8 (from x.shape[0]), got 9"),
            std::string::npos)
      << last_message_;
}

TEST_F(GuardTest, SymbolDivisibility) {
  kiln_test::TestGraphOptions o;
  o.divisible_by = 4;
  open({o});
  Buffers b(6);
  auto f =
      miss(TensorView(b.x.data(), DType::f32, {6, 64}), TensorView(b.w.data(), DType::f32, {64}),
           TensorView(b.y.data(), DType::f32, {6, 64}));
  EXPECT_TRUE(has(f, "general", "symbol n", "a multiple of 4", "6"));
}

TEST_F(GuardTest, ContiguityMismatch) {
  open();
  Buffers b(8);
  int64_t shape[] = {8, 64};
  int64_t transposed[] = {1, 8};
  TensorView x(b.x.data(), DType::f32, shape, transposed);
  auto f = miss(x, TensorView(b.w.data(), DType::f32, {64}),
                TensorView(b.y.data(), DType::f32, {8, 64}));
  EXPECT_TRUE(has(f, "general", "x.strides", "contiguous (64, 1)", "(1, 8)"));

  // Row-major strides given explicitly, and any stride on a size-1 dim, pass.
  int64_t row_major[] = {64, 1};
  int64_t one_shape[] = {1, 64};
  int64_t odd[] = {12345, 1};
  TensorView xs(b.x.data(), DType::f32, shape, row_major);
  TensorView w(b.w.data(), DType::f32, {64});
  TensorView y(b.y.data(), DType::f32, {8, 64});
  const DLTensor* in[] = {&xs.dl(), &w.dl()};
  const DLTensor* out[] = {&y.dl()};
  EXPECT_EQ(graph().select(in, out), "n=8");
  TensorView x1(b.x.data(), DType::f32, one_shape, odd), y1(b.y.data(), DType::f32, {1, 64});
  const DLTensor* in1[] = {&x1.dl(), &w.dl()};
  const DLTensor* out1[] = {&y1.dl()};
  EXPECT_EQ(graph().select(in1, out1), "general");
}

// Strided inputs: Kiln's kernels read row-major memory, so a view with
// other strides misses with the strides it has, and the kernel never runs
// on it; a contiguous slice (through data or byte_offset) runs.
TEST_F(GuardTest, StridedViewsMissAndNothingIsWritten) {
  open();
  Buffers b(16);
  std::fill(b.y.begin(), b.y.end(), -7.0f);
  int64_t shape[] = {8, 64};
  struct Case {
    const char* what;
    int64_t strides[2];
    const char* actual;
  };
  for (const Case& c : {Case{"transposed (a [64, 8] buffer)", {1, 8}, "(1, 8)"},
                        Case{"every second row", {128, 1}, "(128, 1)"},
                        Case{"every second column", {128, 2}, "(128, 2)"}}) {
    int64_t strides[] = {c.strides[0], c.strides[1]};
    auto f =
        miss(TensorView(b.x.data(), DType::f32, shape, strides),
             TensorView(b.w.data(), DType::f32, {64}), TensorView(b.y.data(), DType::f32, {8, 64}));
    EXPECT_TRUE(has(f, "n=8", "x.strides", "contiguous (64, 1)", c.actual)) << c.what;
    EXPECT_TRUE(has(f, "general", "x.strides", "contiguous (64, 1)", c.actual)) << c.what;
    EXPECT_NE(
        last_message_.find(std::string("x.strides: expected contiguous (64, 1), got ") + c.actual),
        std::string::npos)
        << last_message_;
  }
  // An output can be strided too.
  int64_t step_rows[] = {128, 1};
  auto f =
      miss(TensorView(b.x.data(), DType::f32, {8, 64}), TensorView(b.w.data(), DType::f32, {64}),
           TensorView(b.y.data(), DType::f32, shape, step_rows));
  EXPECT_TRUE(has(f, "general", "y.strides", "contiguous (64, 1)", "(128, 1)"));
  for (float v : b.y) ASSERT_EQ(v, -7.0f);
}

TEST_F(GuardTest, ContiguousSlicesRunOnTheirOwnElements) {
  open();
  Buffers b(16);
  TensorView w(b.w.data(), DType::f32, {64});
  // Rows 4..11 of a [16, 64] buffer, through byte_offset (16-byte aligned).
  DLTensor x = TensorView(b.x.data(), DType::f32, {8, 64}).dl();
  int64_t shape[] = {8, 64};
  x.shape = shape;
  x.byte_offset = 4 * 64 * sizeof(float);
  // And an output that is rows 8..15 of y, through data.
  TensorView y(b.y.data() + 8 * 64, DType::f32, {8, 64});
  const DLTensor* in[] = {&x, &w.dl()};
  const DLTensor* out[] = {&y.dl()};
  EXPECT_EQ(graph().select(in, out), "n=8");
  graph().call(in, out);
  for (int64_t i = 0; i < 8 * 64; ++i) {
    ASSERT_FLOAT_EQ(b.y[8 * 64 + i], 2 * b.x[4 * 64 + i] + b.w[i % 64]) << i;
  }
  // A size-1 dim may have any stride (PyTorch calls such a view
  // contiguous): row 5 alone, with the stride of its [16, 64] parent or a
  // nonsense one, reads the same 64 elements.
  for (int64_t row_stride : {int64_t{64}, int64_t{999}, int64_t{-3}}) {
    int64_t one_shape[] = {1, 64};
    int64_t strides[] = {row_stride, 1};
    TensorView row(b.x.data() + 5 * 64, DType::f32, one_shape, strides);
    TensorView y1(b.y.data(), DType::f32, {1, 64});
    graph().call({row, w}, {y1});
    for (int64_t c = 0; c < 64; ++c) ASSERT_FLOAT_EQ(b.y[c], 2 * b.x[5 * 64 + c] + b.w[c]);
  }
}

TEST_F(GuardTest, EmptyTensorsRunNothingAndMayHaveNullData) {
  kiln_test::TestGraphOptions o;
  o.n_min = 0;
  open({o});
  Buffers b(1);
  b.y[0] = -7.0f;
  // n = 0: NULL data is valid for an empty tensor, and so is any stride.
  int64_t shape[] = {0, 64};
  int64_t odd[] = {5, 3};
  TensorView x(nullptr, DType::f32, shape, odd), w(b.w.data(), DType::f32, {64}),
      y(nullptr, DType::f32, {0, 64});
  const DLTensor* in[] = {&x.dl(), &w.dl()};
  const DLTensor* out[] = {&y.dl()};
  EXPECT_EQ(graph().select(in, out), "general");
  graph().call(in, out);
  TensorView y_data(b.y.data(), DType::f32, {0, 64});
  graph().call({x, w}, {y_data});
  EXPECT_EQ(b.y[0], -7.0f);
  EXPECT_EQ(graph().counters().hits, 2u);
  // NULL data with elements is an invalid argument, hit or not.
  try {
    graph().call({TensorView(nullptr, DType::f32, {8, 64}), w},
                 {TensorView(b.y.data(), DType::f32, {8, 64})});
    FAIL();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("'x' has NULL data but 512 elements"), std::string::npos)
        << e.what();
  }
}

TEST_F(GuardTest, AlignmentMismatch) {
  open();
  Buffers b(8);
  auto f =
      miss(TensorView(b.x.data() + 1, DType::f32, {8, 64}),
           TensorView(b.w.data(), DType::f32, {64}), TensorView(b.y.data(), DType::f32, {8, 64}));
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].subject, "x.data");
  EXPECT_EQ(f[0].expected, "alignment 16 bytes");
  EXPECT_NE(f[0].actual.find("(4 past a multiple of 16)"), std::string::npos) << f[0].actual;
  // byte_offset counts: data aligned, offset not.
  DLTensor x = TensorView(b.x.data(), DType::f32, {8, 64}).dl();
  int64_t shape[] = {8, 64};
  x.shape = shape;
  x.byte_offset = 8;
  TensorView w(b.w.data(), DType::f32, {64}), y(b.y.data(), DType::f32, {8, 64});
  const DLTensor* in[] = {&x, &w.dl()};
  const DLTensor* out[] = {&y.dl()};
  EXPECT_THROW(graph().select(in, out), kiln::RecompileError);
  x.byte_offset = 16;
  EXPECT_EQ(graph().select(in, out), "n=8");
}

TEST_F(GuardTest, EveryFailedGuardIsListed) {
  open();
  Buffers b(9);
  auto f =
      miss(TensorView(b.x.data(), DType::f64, {8, 64}), TensorView(b.w.data(), DType::f32, {32}),
           TensorView(b.y.data(), DType::f32, {9, 64}));
  EXPECT_TRUE(has(f, "general", "x.dtype", "f32", "f64"));
  EXPECT_TRUE(has(f, "general", "w.shape[0]", "64", "32"));
  EXPECT_TRUE(has(f, "general", "y.shape[0]", "n = 8 (from x.shape[0])", "9"));
  EXPECT_TRUE(has(f, "n=8", "x.dtype", "f32", "f64"));
  EXPECT_TRUE(has(f, "n=8", "w.shape[0]", "64", "32"));
  EXPECT_TRUE(has(f, "n=8", "y.shape[0]", "n = 8 (fixed by this specialization)", "9"));
  EXPECT_EQ(f.size(), 6u);
}

TEST_F(GuardTest, WrongTensorCountAndNullDataAreInvalidArguments) {
  open();
  Buffers b(8);
  TensorView x(b.x.data(), DType::f32, {8, 64}), w(b.w.data(), DType::f32, {64}),
      y(b.y.data(), DType::f32, {8, 64});
  try {
    graph().call({x}, {y});
    FAIL();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("takes 2 inputs and 1 outputs, got 1 and 1"),
              std::string::npos)
        << e.what();
  }
  try {
    graph().call({x, TensorView(nullptr, DType::f32, {64})}, {y});
    FAIL();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("'w' has NULL data"), std::string::npos) << e.what();
  }
  const DLTensor* in[] = {&x.dl(), nullptr};
  const DLTensor* out[] = {&y.dl()};
  EXPECT_THROW(graph().call(in, out), kiln::Error);
  EXPECT_EQ(graph().counters().calls, 0u);  // refused before counting
}

TEST_F(GuardTest, FallbackWithoutJitIsNoSpecialization) {
  open({{}}, kiln::Stance::fallback);
  Buffers b(8);
  try {
    graph().call(
        {TensorView(b.x.data(), DType::f32, {8, 63}), TensorView(b.w.data(), DType::f32, {64})},
        {TensorView(b.y.data(), DType::f32, {8, 64})});
    FAIL();
  } catch (const kiln::NoSpecializationError& e) {
    EXPECT_EQ(e.code(), ErrorCode::no_specialization);
    EXPECT_NE(std::string(e.what()).find("no JIT compiler is linked"), std::string::npos);
    EXPECT_EQ(e.failures().size(), 2u);
  }
  package_->set_stance(kiln::Stance::fail_on_recompile);
  EXPECT_EQ(package_->stance(), kiln::Stance::fail_on_recompile);
  // The same call now throws RecompileError (miss() checks the type).
  EXPECT_EQ(
      miss(TensorView(b.x.data(), DType::f32, {8, 63}), TensorView(b.w.data(), DType::f32, {64}),
           TensorView(b.y.data(), DType::f32, {8, 64}))
          .size(),
      2u);
}

// A specialization with no guards and every symbol fixed (it accepts every
// call) that counts its runs: enough to see the runtime adopt what a JIT
// returns.
class CountingSpecialization : public kiln::JitSpecialization {
 public:
  explicit CountingSpecialization(size_t symbols) {
    fb::SpecializationT spec;
    spec.name = "jit-compiled";
    spec.symbol_values.assign(symbols, 8);
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(fb::Specialization::Pack(fbb, &spec));
    bytes_.assign(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  }
  std::span<const uint8_t> specialization() const noexcept override { return bytes_; }
  void run(const kiln::JitCall& call) const override {
    ++runs;
    inputs = call.inputs.size();
  }
  mutable int runs = 0;
  mutable size_t inputs = 0;

 private:
  std::vector<uint8_t> bytes_;
};

// Stands in for runtime/jit: records what the runtime handed it.
class RecordingJit : public kiln::JitCompiler {
 public:
  std::shared_ptr<const kiln::JitSpecialization> compile(const kiln::JitRequest& request) override {
    ++compiles;
    graph = std::string(request.graph);
    failures = request.failures.size();
    inputs = request.inputs.size();
    if (!accept) return nullptr;
    if (compiled == nullptr) {
      const fb::GraphEntry* entry = request.package.manifest().graphs()->LookupByKey(graph.c_str());
      compiled = std::make_shared<CountingSpecialization>(entry->symbols()->size());
    }
    return compiled;
  }
  bool accept = true;
  int compiles = 0;
  std::string graph;
  size_t failures = 0, inputs = 0;
  std::shared_ptr<CountingSpecialization> compiled;
};

TEST_F(GuardTest, FallbackHandsMissesToARegisteredJitAndKeepsWhatItCompiled) {
  open({{}}, kiln::Stance::fallback);
  RecordingJit jit;
  kiln::set_jit_compiler(&jit);
  Buffers b(8);
  TensorView x(b.x.data(), DType::f32, {8, 63}), w(b.w.data(), DType::f32, {64}),
      y(b.y.data(), DType::f32, {8, 64});
  package_->set_stance(kiln::Stance::fail_on_recompile);  // the pinned stance never asks the JIT
  EXPECT_THROW(graph().call({x, w}, {y}), kiln::RecompileError);
  EXPECT_EQ(jit.compiles, 0);
  package_->set_stance(kiln::Stance::fallback);
  jit.accept = false;
  try {
    graph().call({x, w}, {y});
    FAIL();
  } catch (const kiln::NoSpecializationError& e) {
    EXPECT_NE(std::string(e.what()).find("the JIT compiler declined"), std::string::npos)
        << e.what();
  }
  jit.accept = true;
  EXPECT_NO_THROW(graph().call({x, w}, {y}));
  EXPECT_EQ(jit.graph, "scale_add");
  EXPECT_EQ(jit.failures, 2u);
  EXPECT_EQ(jit.inputs, 2u);
  EXPECT_EQ(jit.compiles, 2);
  EXPECT_EQ(jit.compiled->runs, 1);
  EXPECT_EQ(jit.compiled->inputs, 2u);
  // The next call runs what the JIT returned without asking it again.
  EXPECT_NO_THROW(graph().call({x, w}, {y}));
  EXPECT_EQ(jit.compiles, 2);
  EXPECT_EQ(jit.compiled->runs, 2);
  const DLTensor* in[] = {&x.dl(), &w.dl()};
  const DLTensor* out[] = {&y.dl()};
  EXPECT_EQ(graph().select(in, out), "jit-compiled");
  const kiln::GraphCounters c = graph().counters();
  EXPECT_EQ(c.calls, 4u);
  EXPECT_EQ(c.hits, 0u);
  EXPECT_EQ(c.misses, 3u);
  EXPECT_EQ(c.jit_served, 1u);
  EXPECT_EQ(c.jit_hits, 1u);
  kiln::set_jit_compiler(nullptr);
}

TEST_F(GuardTest, CountersCountMissesByGuardKind) {
  open();
  Buffers b(9);
  TensorView w(b.w.data(), DType::f32, {64});
  graph().call({TensorView(b.x.data(), DType::f32, {8, 64}), w},
               {TensorView(b.y.data(), DType::f32, {8, 64})});
  graph().call({TensorView(b.x.data(), DType::f32, {3, 64}), w},
               {TensorView(b.y.data(), DType::f32, {3, 64})});
  EXPECT_THROW(graph().call({TensorView(b.x.data(), DType::f16, {3, 64}), w},
                            {TensorView(b.y.data(), DType::f32, {3, 64})}),
               kiln::RecompileError);
  EXPECT_THROW(graph().call({TensorView(b.x.data(), DType::f32, {3, 63}), w},
                            {TensorView(b.y.data(), DType::f32, {3, 64})}),
               kiln::RecompileError);
  const kiln::GraphCounters c = graph().counters();
  EXPECT_EQ(c.calls, 4u);
  EXPECT_EQ(c.hits, 2u);
  EXPECT_EQ(c.misses, 2u);
  EXPECT_EQ(c.misses_by_reason[static_cast<size_t>(fb::GuardKind::DType)], 1u);
  EXPECT_EQ(c.misses_by_reason[static_cast<size_t>(fb::GuardKind::DimConst)], 1u);
  EXPECT_EQ(c.misses_by_reason[static_cast<size_t>(fb::GuardKind::Rank)], 0u);
}

// Selection through the shape-keyed table: each static specialization is
// found by its n, every other n falls to the general one, and the choice
// equals the first passing specialization in manifest order.
class SelectionTest : public ::testing::Test {
 protected:
  void open(fb::ManifestT manifest) {
    bytes_ = kiln::compiler::write_package(std::move(manifest), kiln_test::test_blobs());
    package_ = std::make_unique<kiln::Package>(kiln::Package::open_memory(
        kiln_test::as_bytes(bytes_), {.stance = kiln::Stance::fail_on_recompile}));
  }
  // The specialization chosen for x: f32[n, 64] at `x_data`, or the miss
  // message.
  std::string select(int64_t n, float* x_data = nullptr) {
    x_.resize(static_cast<size_t>(n * 64 + 16));
    y_.resize(static_cast<size_t>(n * 64));
    TensorView x(x_data ? x_data : x_.data(), DType::f32, {n, 64}), w(w_, DType::f32, {64}),
        y(y_.data(), DType::f32, {n, 64});
    const DLTensor* in[] = {&x.dl(), &w.dl()};
    const DLTensor* out[] = {&y.dl()};
    try {
      return std::string(package_->graph("scale_add").select(in, out));
    } catch (const kiln::RecompileError& e) {
      return e.what();
    }
  }
  std::vector<uint8_t> bytes_;
  std::unique_ptr<kiln::Package> package_;
  std::vector<float> x_, y_;
  float w_[64] = {};
};

TEST_F(SelectionTest, EachStaticIsFoundByItsShapeAndTheGeneralCatchesTheRest) {
  kiln_test::TestGraphOptions o;
  o.more_statics = {1, 2, 3, 16, 1000, 4096};
  open(kiln_test::make_test_manifest({o}));
  for (int64_t n : {8, 1, 2, 3, 16, 1000, 4096}) EXPECT_EQ(select(n), "n=" + std::to_string(n));
  for (int64_t n : {4, 5, 7, 9, 17, 999, 4097}) EXPECT_EQ(select(n), "general") << n;
}

TEST_F(SelectionTest, TiesBreakByManifestOrder) {
  // Two specializations fix n = 8; the first also wants x 64-byte aligned.
  kiln_test::TestGraphOptions o;
  o.alignment = 64;
  fb::ManifestT m = kiln_test::make_test_manifest({o});
  kiln_test::TestGraphOptions loose;
  auto second = kiln_test::make_specialization(loose, 8);
  second->name = "n=8,any16";
  auto& specs = m.graphs[0]->specializations;
  specs.insert(specs.begin() + 1, std::move(second));
  // The general one asks for 64 bytes too, so a 16-byte aligned n = 9 misses.
  open(std::move(m));
  alignas(64) static float x[8 * 64 + 64];
  EXPECT_EQ(select(8, x), "n=8");
  EXPECT_EQ(select(8, x + 4), "n=8,any16");
  EXPECT_EQ(select(9, x), "general");
  const std::string miss = select(9, x + 4);
  // A miss still lists what each candidate failed, the static ones included.
  EXPECT_NE(miss.find("general: x.data: expected alignment 64 bytes"), std::string::npos) << miss;
  EXPECT_NE(miss.find("n=8: x.shape[0]: expected n = 8 (fixed by this specialization), got 9"),
            std::string::npos)
      << miss;
  EXPECT_NE(miss.find("n=8,any16: x.shape[0]"), std::string::npos) << miss;
}

TEST_F(SelectionTest, AStaticCheckedElsewhereThanTheKeyIsStillTried) {
  // "n=4" checks n on y only: the table, keyed on x.shape[0] by "n=8",
  // cannot file it, so it is tried for every call, in its place.
  kiln_test::TestGraphOptions o;
  o.more_statics = {4};
  fb::ManifestT m = kiln_test::make_test_manifest({o});
  auto& guards = m.graphs[0]->specializations[1]->guards;
  std::erase_if(
      guards, [](const auto& g) { return g->kind == fb::GuardKind::DimSymbol && g->tensor == 0; });
  open(std::move(m));
  EXPECT_EQ(select(8), "n=8");
  EXPECT_EQ(select(4), "n=4");
  EXPECT_EQ(select(5), "general");
}

TEST_F(SelectionTest, AKeyDimTheCallLacksTriesEveryCandidate) {
  kiln_test::TestGraphOptions o;
  o.more_statics = {2};
  open(kiln_test::make_test_manifest({o}));
  TensorView x(w_, DType::f32, {64}), w(w_, DType::f32, {64}), y(w_, DType::f32, {64});
  const DLTensor* in[] = {&x.dl(), &w.dl()};
  const DLTensor* out[] = {&y.dl()};
  try {
    package_->graph("scale_add").select(in, out);
    FAIL();
  } catch (const kiln::RecompileError& e) {
    std::set<std::string> specs;
    for (const GuardFailure& f : e.failures()) specs.insert(f.specialization);
    EXPECT_EQ(specs, (std::set<std::string>{"n=8", "n=2", "general"}));
  }
}

TEST_F(GuardTest, AnOutputOverlappingAnyTensorIsRefused) {
  open();
  Buffers b(16);
  TensorView w(b.w.data(), DType::f32, {64});
  auto call_message = [&](float* x, float* y, TensorView* w_view = nullptr) -> std::string {
    try {
      graph().call({TensorView(x, DType::f32, {8, 64}), w_view ? *w_view : w},
                   {TensorView(y, DType::f32, {8, 64})});
      return "ran";
    } catch (const kiln::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      return e.what();
    }
  };
  // y's last four elements are x's first four, and the other way round.
  EXPECT_NE(call_message(b.x.data() + 8 * 64 - 4, b.x.data()).find("output 'y' overlaps input 'x'"),
            std::string::npos);
  EXPECT_NE(call_message(b.x.data(), b.x.data() + 8 * 64 - 4).find("overlaps input 'x'"),
            std::string::npos);
  // w lies inside y.
  TensorView inside(b.y.data() + 64, DType::f32, {64});
  EXPECT_NE(call_message(b.x.data(), b.y.data(), &inside).find("overlaps input 'w'"),
            std::string::npos);
  // Adjacent is not overlapping: y starts where x ends.
  EXPECT_EQ(call_message(b.x.data(), b.x.data() + 8 * 64), "ran");
}

TEST_F(GuardTest, ATensorLargerThanMemoryIsRefusedNotWrapped) {
  kiln_test::TestGraphOptions o;
  o.n_max = int64_t{1} << 62;
  o.static_n8 = false;
  open({o});
  Buffers b(1);
  const int64_t n = int64_t{1} << 57;  // 2^57 * 64 floats: 2^65 bytes
  try {
    graph().call(
        {TensorView(b.x.data(), DType::f32, {n, 64}), TensorView(b.w.data(), DType::f32, {64})},
        {TensorView(b.y.data(), DType::f32, {n, 64})});
    FAIL();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("tensor 'x' has more elements than memory can hold"),
              std::string::npos)
        << e.what();
  }
}

// Indexing width: "general,index32" admits calls whose every index extent
// is below its limit; "general" (64-bit) catches the rest. Guards read only
// shapes, so sizes past 2^31 elements need no memory.
class IndexWidthTest : public SelectionTest {
 protected:
  static constexpr int64_t kLimit = int64_t{1} << 31;
  // `with_general`: also the 64-bit general specialization after it.
  static fb::ManifestT manifest(bool with_general) {
    kiln_test::TestGraphOptions o;
    o.static_n8 = false;
    o.n_max = int64_t{1} << 62;
    fb::ManifestT m = kiln_test::make_test_manifest({o});
    auto narrow = kiln_test::make_specialization(o, -1);
    narrow->name = "general,index32";
    auto g = kiln_test::guard(fb::GuardKind::IndexWidth, 0, 0, -1, kLimit);
    g->extents.push_back(kiln_test::n_times_width());
    g->extents.push_back(kiln_test::expr({kiln_test::constant(64)}));
    narrow->guards.push_back(std::move(g));
    auto& specs = m.graphs[0]->specializations;
    if (!with_general) specs.clear();
    specs.insert(specs.begin(), std::move(narrow));
    return m;
  }
  std::string select_rows(int64_t n) {
    TensorView x(w_, DType::f32, {n, 64}), w(w_, DType::f32, {64}), y(w_ + 16, DType::f32, {n, 64});
    const DLTensor* in[] = {&x.dl(), &w.dl()};
    const DLTensor* out[] = {&y.dl()};
    try {
      return std::string(package_->graph("scale_add").select(in, out));
    } catch (const kiln::RecompileError& e) {
      failures_ = e.failures();
      return e.what();
    }
  }
  std::vector<GuardFailure> failures_;
};

TEST_F(IndexWidthTest, ThirtyTwoBitBelowTheLimitSixtyFourFromIt) {
  open(manifest(true));
  const int64_t last_narrow = kLimit / 64 - 1;  // n * 64 = 2^31 - 64
  EXPECT_EQ(select_rows(1), "general,index32");
  EXPECT_EQ(select_rows(last_narrow), "general,index32");
  EXPECT_EQ(select_rows(last_narrow + 1), "general");  // n * 64 = 2^31
  EXPECT_EQ(select_rows(int64_t{1} << 40), "general");
  // n * 64 overflows int64: no 32-bit index holds it either.
  EXPECT_EQ(select_rows(int64_t{1} << 58), "general");
}

TEST_F(IndexWidthTest, AMissSaysWhichExtentIsTooLarge) {
  open(manifest(false));
  const std::string message = select_rows(kLimit / 64);
  ASSERT_EQ(failures_.size(), 1u) << message;
  EXPECT_EQ(failures_[0].specialization, "general,index32");
  EXPECT_EQ(failures_[0].subject, "index extent 0");  // n * 64, as kiln inspect lists it
  EXPECT_EQ(failures_[0].expected, "< 2147483648 (32-bit indexing)");
  EXPECT_EQ(failures_[0].actual, "2147483648");
  select_rows(int64_t{1} << 58);
  ASSERT_EQ(failures_.size(), 1u);
  EXPECT_EQ(failures_[0].actual, "more than 64 bits hold");

  std::vector<float> x(64), y(64);
  EXPECT_THROW(package_->graph("scale_add")
                   .call({TensorView(x.data(), DType::f32, {kLimit / 64, 64}),
                          TensorView(w_, DType::f32, {64})},
                         {TensorView(y.data(), DType::f32, {kLimit / 64, 64})}),
               kiln::RecompileError);
  EXPECT_EQ(package_->graph("scale_add")
                .counters()
                .misses_by_reason[static_cast<size_t>(fb::GuardKind::IndexWidth)],
            1u);
}

TEST_F(IndexWidthTest, InspectTextListsTheExtents) {
  open(manifest(true));
  const fb::GraphEntry& g = *package_->reader().manifest().graphs()->Get(0);
  const fb::Specialization& narrow = *g.specializations()->Get(0);
  const fb::Guard& last = *narrow.guards()->Get(narrow.guards()->size() - 1);
  EXPECT_EQ(kiln::describe_guard(g, last),
            "index extents < 2147483648 (32-bit indexing): n * 64, 64");
}

TEST_F(IndexWidthTest, AGuardWithoutExtentsOrLimitIsCorrupt) {
  for (int64_t limit : {int64_t{0}, kLimit}) {
    fb::ManifestT m = manifest(true);
    auto& g = m.graphs[0]->specializations[0]->guards.back();
    g->value = limit;
    if (limit != 0) g->extents.clear();
    const auto bytes = kiln::compiler::write_package(std::move(m), kiln_test::test_blobs());
    try {
      kiln::Package::open_memory(kiln_test::as_bytes(bytes));
      FAIL();
    } catch (const kiln::PackageError& e) {
      EXPECT_EQ(e.code(), ErrorCode::package_corrupt);
      EXPECT_NE(std::string(e.what()).find(limit == 0 ? "limits index extents to 0"
                                                      : "limits no index extent"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(GuardProgramLimits, SymbolNeitherFixedNorBoundIsRefusedAtOpen) {
  kiln_test::TestGraphOptions o;
  o.static_n8 = false;
  fb::ManifestT m = kiln_test::make_test_manifest({o});
  auto& guards = m.graphs[0]->specializations[0]->guards;
  std::erase_if(guards, [](const auto& g) { return g->kind == fb::GuardKind::DimSymbol; });
  const auto bytes = kiln::compiler::write_package(std::move(m), kiln_test::test_blobs());
  try {
    kiln::Package::open_memory(kiln_test::as_bytes(bytes));
    FAIL();
  } catch (const kiln::PackageError& e) {
    EXPECT_EQ(e.code(), ErrorCode::package_corrupt);
    EXPECT_NE(std::string(e.what()).find("neither fixes symbol n nor binds it"), std::string::npos)
        << e.what();
  }
}

// The hit path fuses each tensor's guards; a second guard of a kind already
// seen for that tensor (or symbol) still has to hold.
TEST(GuardProgramLimits, RepeatedGuardsOfOneKindAllHold) {
  kiln_test::TestGraphOptions o;
  o.static_n8 = false;
  o.alignment = 4;
  fb::ManifestT m = kiln_test::make_test_manifest({o});
  auto& guards = m.graphs[0]->specializations[0]->guards;
  auto extra = [&](fb::GuardKind kind, int32_t symbol, int64_t value, int64_t value2) {
    auto g = std::make_unique<fb::GuardT>();
    g->kind = kind;
    g->tensor = 0;
    g->symbol = symbol;
    g->value = value;
    g->value2 = value2;
    guards.push_back(std::move(g));
  };
  extra(fb::GuardKind::Alignment, -1, 64, 0);
  extra(fb::GuardKind::SymbolRange, 0, 1, 16);
  extra(fb::GuardKind::SymbolDivisible, 0, 3, 0);
  const auto bytes = kiln::compiler::write_package(std::move(m), kiln_test::test_blobs());
  kiln::Package pkg = kiln::Package::open_memory(kiln_test::as_bytes(bytes),
                                                 {.stance = kiln::Stance::fail_on_recompile});
  kiln::Graph& g = pkg.graph("scale_add");

  alignas(64) static float x[32 * 64 + 16];
  static float w[64];
  static float y[32 * 64];
  auto select = [&](float* xp, int64_t n) {
    TensorView xv(xp, DType::f32, {n, 64}), wv(w, DType::f32, {64}), yv(y, DType::f32, {n, 64});
    const DLTensor* in[] = {&xv.dl(), &wv.dl()};
    const DLTensor* out[] = {&yv.dl()};
    try {
      return std::string(g.select(in, out));
    } catch (const kiln::RecompileError& e) {
      return std::string(e.what());
    }
  };
  EXPECT_EQ(select(x, 9), "general");
  // 64-byte alignment (the second Alignment guard), not just 4.
  EXPECT_NE(select(x + 4, 9).find("alignment 64 bytes"), std::string::npos) << select(x + 4, 9);
  // n in [1, 16] (the second range) and a multiple of 3 (the second divisor).
  EXPECT_NE(select(x, 18).find("symbol n: expected in [1, 16], got 18"), std::string::npos)
      << select(x, 18);
  EXPECT_NE(select(x, 10).find("a multiple of 3"), std::string::npos) << select(x, 10);
}

}  // namespace
