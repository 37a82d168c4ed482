// The runtime's gemm pieces without a GPU: the bounds every gemm is held to,
// how much of a tensor an operand may use, sizes evaluated over symbols, the
// algorithm cache's key and locking, the launcher refusing a bad gemm before
// it touches a device, and (where cuBLASLt is installed) the descriptors
// that turn the row-major problem into cuBLASLt's column-major one. The Gpu
// tests (skipped without a driver and a device) run gemms through the
// launcher and watch its algorithm cache.
#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cublaslt_gemm.h"
#include "cublaslt_library.h"
#include "cuda_driver.h"
#include "cuda_launcher.h"
#include "kiln/error.h"
#include "kiln/package_reader.h"
#include "kiln/runtime_internal/gemm_plan.h"
#include "test_support/cpu_test_package.h"
#include "test_support/gemm_test_package.h"

namespace {

using kiln::DType;
using kiln::ErrorCode;
using kiln::GemmEpilogue;
using kiln::GemmOperand;
using kiln::GemmOperands;
using kiln::GemmProblem;
using kiln::detail::GemmSite;
namespace fb = kiln::fb;

const GemmSite kSite{"g", "launch 2 (gemm)"};
constexpr const char* kPrefix = "kiln: graph 'g', launch 2 (gemm): ";

// Operands exactly as large as `p` needs, at distinct 256-aligned addresses
// no one dereferences.
GemmOperands exact(const GemmProblem& p) {
  const auto at = [](uintptr_t a) { return reinterpret_cast<void*>(a); };
  GemmOperands o;
  o.a = {at(0x10000), kiln_test::gemm_a_elements(p)};
  o.b = {at(0x20000), kiln_test::gemm_b_elements(p)};
  o.d = {at(0x30000), kiln_test::gemm_d_elements(p)};
  o.bias = {at(0x40000), kiln::gemm_has_bias(p.epilogue) ? p.n : 0};
  o.workspace = at(0x50000);
  o.workspace_bytes = 4 << 20;
  return o;
}

std::string refusal(const std::function<void()>& call,
                    ErrorCode code = ErrorCode::invalid_argument) {
  try {
    call();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(GemmBounds, ExtentsFollowTheWalkOfEachOperand) {
  const GemmProblem p = kiln_test::example_gemm();
  kiln::detail::GemmExtents e = kiln::detail::gemm_extents(p, kSite);
  EXPECT_EQ(e.a, 16 * 3 + 3);       // stride 0: one matrix, 17 rows of 3
  EXPECT_EQ(e.b, 85 + 16 * 5 + 5);  // the second batch's last row
  EXPECT_EQ(e.d, 2 * 3 * 5);
  EXPECT_EQ(e.bias, 5);

  GemmProblem padded = p;
  padded.trans_a = false;
  padded.lda = 20;  // A stored 3 x 17, rows 20 apart
  padded.trans_b = true;
  padded.ldb = 17;  // B stored 5 x 17
  padded.stride_b = 0;
  padded.epilogue = GemmEpilogue::relu;
  e = kiln::detail::gemm_extents(padded, kSite);
  EXPECT_EQ(e.a, 2 * 20 + 17);
  EXPECT_EQ(e.b, 4 * 17 + 17);
  EXPECT_EQ(e.bias, 0);

  GemmProblem no_product = p;
  no_product.k = 0;  // D = epilogue(bias), A and B unread
  e = kiln::detail::gemm_extents(no_product, kSite);
  EXPECT_EQ(e.a, 0);
  EXPECT_EQ(e.b, 0);
  EXPECT_EQ(e.d, 30);

  for (int64_t GemmProblem::*empty : {&GemmProblem::m, &GemmProblem::n, &GemmProblem::batch}) {
    GemmProblem q = p;
    q.*empty = 0;
    e = kiln::detail::gemm_extents(q, kSite);
    EXPECT_EQ(e.a + e.b + e.d + e.bias, 0) << "nothing runs, nothing is touched";
  }
}

TEST(GemmBounds, RefusesWhatCannotRun) {
  struct Case {
    const char* what;
    std::function<void(GemmProblem&)> change;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"negative m", [](GemmProblem& p) { p.m = -1; }, "gemm m is -1, expected >= 0"},
      {"negative k", [](GemmProblem& p) { p.k = -4; }, "gemm k is -4, expected >= 0"},
      {"negative stride", [](GemmProblem& p) { p.stride_b = -85; },
       "gemm stride_b is -85, expected >= 0"},
      {"lda shorter than A's stored row", [](GemmProblem& p) { p.lda = 2; },
       "A's leading dimension is 2, expected at least 3 (its stored row of 3 elements"},
      {"ldb below 1",
       [](GemmProblem& p) {
         p.n = 0;
         p.ldb = 0;
       },
       "B's leading dimension is 0, expected at least 1"},
      {"a batch cuBLASLt cannot count", [](GemmProblem& p) { p.batch = int64_t{1} << 31; },
       "gemm batch is 2147483648, cuBLASLt takes at most 2147483647"},
      {"an extent past int64",
       [](GemmProblem& p) {
         p.stride_b = int64_t{1} << 62;
         p.batch = 5;
       },
       "B spans more than 2^63 elements"},
      {"D past int64",
       [](GemmProblem& p) {
         // A (2^32 x 1) and B (1 x 2^32) fit; D, 2 x 2^32 x 2^32, does not.
         p.trans_a = false;
         p.m = p.n = p.ldb = int64_t{1} << 32;
         p.k = p.lda = 1;
         p.stride_a = p.stride_b = 0;
       },
       "D spans more than 2^63 elements"},
      {"A and B of two dtypes", [](GemmProblem& p) { p.b_dtype = DType::f32; },
       "a gemm of f16 x f32 -> f32 is not supported: expected A and B of one of f32, f16, bf16 "
       "and D of theirs or f32"},
      {"an integer gemm", [](GemmProblem& p) { p.a_dtype = p.b_dtype = p.d_dtype = DType::i32; },
       "a gemm of i32 x i32 -> i32 is not supported"},
      {"D of a third dtype", [](GemmProblem& p) { p.d_dtype = DType::bf16; },
       "a gemm of f16 x f16 -> bf16 is not supported"},
      {"an unknown epilogue", [](GemmProblem& p) { p.epilogue = static_cast<GemmEpilogue>(7); },
       "unknown gemm epilogue 7"},
  };
  for (const Case& c : cases) {
    GemmProblem p = kiln_test::example_gemm();
    c.change(p);
    const std::string message = refusal([&] { kiln::detail::gemm_extents(p, kSite); });
    EXPECT_EQ(message.rfind(kPrefix, 0), 0u) << c.what << ": " << message;
    EXPECT_NE(message.find(c.says), std::string::npos) << c.what << ": " << message;
  }
}

TEST(GemmBounds, EveryOperandMustHoldWhatTheGemmTouches) {
  const GemmProblem p = kiln_test::example_gemm();
  EXPECT_NO_THROW(kiln::detail::check_gemm_operands(p, exact(p), kSite));
  struct Case {
    GemmOperand GemmOperands::*operand;
    const char* says;
  };
  const Case cases[] = {
      {&GemmOperands::a,
       "A needs 51 f16 elements ((batch - 1) * stride_a + (rows - 1) * lda + row for k x m = 17 x "
       "3, lda 3, batch 2, stride_a 0), its buffer holds 50"},
      {&GemmOperands::b,
       "B needs 170 f16 elements ((batch - 1) * stride_b + (rows - 1) * ldb + row for k x n = 17 "
       "x 5, ldb 5, batch 2, stride_b 85), its buffer holds 169"},
      {&GemmOperands::d,
       "D needs 30 f32 elements (batch * m * n = 2 * 3 * 5), its buffer holds 29"},
      {&GemmOperands::bias, "the bias needs 5 f32 elements (n = 5), its buffer holds 4"},
  };
  for (const Case& c : cases) {
    GemmOperands o = exact(p);
    (o.*c.operand).elements -= 1;
    const std::string message = refusal([&] { kiln::detail::check_gemm_operands(p, o, kSite); });
    EXPECT_EQ(message, std::string(kPrefix) + c.says);
    o = exact(p);
    (o.*c.operand).data = nullptr;
    EXPECT_NE(refusal([&] {
                kiln::detail::check_gemm_operands(p, o, kSite);
              }).find("but its buffer is NULL"),
              std::string::npos);
  }
  // Without a bias epilogue the bias is not read; an empty gemm reads nothing.
  GemmProblem relu = p;
  relu.epilogue = GemmEpilogue::relu;
  GemmOperands no_bias = exact(relu);
  no_bias.bias = {};
  EXPECT_NO_THROW(kiln::detail::check_gemm_operands(relu, no_bias, kSite));
  GemmProblem empty = p;
  empty.n = 0;
  EXPECT_NO_THROW(kiln::detail::check_gemm_operands(empty, GemmOperands{}, kSite));
}

TEST(GemmBounds, TextNamesEveryField) {
  EXPECT_EQ(kiln::detail::gemm_text(kiln_test::example_gemm()),
            "f16 x f16 -> f32, m 3, n 5, k 17, batch 2, trans_a, lda 3, ldb 5, stride_a 0, "
            "stride_b 85, alpha 0.5, epilogue bias_relu");
}

DLTensor tensor(DLDataType dtype, std::vector<int64_t>& shape, std::vector<int64_t>* strides) {
  DLTensor t{};
  t.data = reinterpret_cast<void*>(0x1000);
  t.device = {kDLCUDA, 0};
  t.ndim = static_cast<int32_t>(shape.size());
  t.dtype = dtype;
  t.shape = shape.data();
  t.strides = strides ? strides->data() : nullptr;
  return t;
}

TEST(GemmOperand, ATensorSpansFromItsFirstToItsLastElement) {
  const DLDataType f32{kDLFloat, 32, 1};
  std::vector<int64_t> shape = {3, 4};
  std::vector<int64_t> strides = {1, 3};  // column-major
  EXPECT_EQ(kiln::detail::tensor_span_bytes(tensor(f32, shape, nullptr)), 48);
  EXPECT_EQ(kiln::detail::tensor_span_bytes(tensor(f32, shape, &strides)), 48);
  strides = {0, 1};  // a row broadcast over 3 rows: 4 elements of memory
  EXPECT_EQ(kiln::detail::tensor_span_bytes(tensor(f32, shape, &strides)), 16);
  strides = {8, 2};  // a strided view reaches further than its element count
  EXPECT_EQ(kiln::detail::tensor_span_bytes(tensor(f32, shape, &strides)), (2 * 8 + 3 * 2 + 1) * 4);
  strides = {-4, 1};  // rows walk backwards: only the first row lies ahead
  EXPECT_EQ(kiln::detail::tensor_span_bytes(tensor(f32, shape, &strides)), 16);
  shape = {3, 0};
  EXPECT_EQ(kiln::detail::tensor_span_bytes(tensor(f32, shape, nullptr)), 0);
  shape = {int64_t{1} << 40, int64_t{1} << 40};
  EXPECT_EQ(kiln::detail::tensor_span_bytes(tensor(f32, shape, nullptr)), -1);
  shape = {};
  EXPECT_EQ(kiln::detail::tensor_span_bytes(tensor(f32, shape, nullptr)), 4);  // a scalar
}

TEST(GemmOperand, ElementsAreTheLesserOfThePlansAndTheTensors) {
  const DLDataType f32{kDLFloat, 32, 1};
  std::vector<int64_t> shape = {10};
  const DLTensor t = tensor(f32, shape, nullptr);
  EXPECT_EQ(kiln::detail::gemm_operand_elements(&t, -1, DType::f32), 10);
  EXPECT_EQ(kiln::detail::gemm_operand_elements(&t, 7, DType::f32), 7);
  EXPECT_EQ(kiln::detail::gemm_operand_elements(&t, 12, DType::f32), 10);
  // Counted in the gemm's dtype: 40 bytes are 20 f16 elements.
  EXPECT_EQ(kiln::detail::gemm_operand_elements(&t, -1, DType::f16), 20);
  // A temp holds what the plan sized it to.
  EXPECT_EQ(kiln::detail::gemm_operand_elements(nullptr, 33, DType::bf16), 33);
  EXPECT_EQ(kiln::detail::gemm_operand_elements(nullptr, -1, DType::bf16), 0);
  shape = {int64_t{1} << 62, 4};
  const DLTensor huge = tensor(f32, shape, nullptr);
  EXPECT_EQ(kiln::detail::gemm_operand_elements(&huge, -1, DType::f32), 0);
}

// A GemmCall of symbols: m = s0, n = 2 * s1, k = s0 + s1, batch absent.
std::vector<uint8_t> symbolic_call() {
  auto sym = [](int64_t s) {
    auto e = std::make_unique<fb::SizeExprT>();
    e->ops = {fb::ExprOp(fb::ExprOpKind::Symbol, s)};
    return e;
  };
  GemmProblem p;
  p.a_dtype = p.b_dtype = DType::bf16;
  p.d_dtype = DType::bf16;
  p.trans_b = true;
  p.alpha = -2;
  p.epilogue = GemmEpilogue::relu;
  std::unique_ptr<fb::LibraryCallT> call = kiln_test::gemm_library_call(p);
  fb::GemmCallT& g = *call->gemm;
  g.m = sym(0);
  g.n = sym(1);
  g.n->ops.push_back(fb::ExprOp(fb::ExprOpKind::Const, 2));
  g.n->ops.push_back(fb::ExprOp(fb::ExprOpKind::Mul, 0));
  g.k = sym(0);
  g.k->ops.push_back(fb::ExprOp(fb::ExprOpKind::Symbol, 1));
  g.k->ops.push_back(fb::ExprOp(fb::ExprOpKind::Add, 0));
  g.lda = sym(1);
  g.ldb = kiln_test::gemm_constant(64);
  g.batch.reset();
  g.stride_a.reset();
  g.stride_b = sym(0);
  flatbuffers::FlatBufferBuilder builder;
  builder.Finish(fb::GemmCall::Pack(builder, &g));
  return {builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize()};
}

TEST(GemmProgram, EvaluatesEverySizeOverTheSymbols) {
  const std::vector<uint8_t> bytes = symbolic_call();
  const kiln::detail::GemmProgram program(*flatbuffers::GetRoot<fb::GemmCall>(bytes.data()));
  const int64_t symbols[] = {7, 3};
  const GemmProblem p = program.evaluate(symbols);
  EXPECT_EQ(p.m, 7);
  EXPECT_EQ(p.n, 6);
  EXPECT_EQ(p.k, 10);
  EXPECT_EQ(p.batch, 1);  // absent: one matrix
  EXPECT_EQ(p.lda, 3);
  EXPECT_EQ(p.ldb, 64);
  EXPECT_EQ(p.stride_a, 0);
  EXPECT_EQ(p.stride_b, 7);
  EXPECT_EQ(p.a_dtype, DType::bf16);
  EXPECT_TRUE(p.trans_b);
  EXPECT_FALSE(p.trans_a);
  EXPECT_EQ(p.alpha, -2);
  EXPECT_EQ(p.epilogue, GemmEpilogue::relu);
  const int64_t huge[] = {int64_t{1} << 62, int64_t{1} << 62};
  const std::string message = refusal([&] { program.evaluate(huge); });
  EXPECT_NE(message.find("gemm n overflows"), std::string::npos) << message;
}

TEST(GemmAlgoKey, EveryFieldThatCanChangeTheChoiceChangesTheKey) {
  const GemmProblem p = kiln_test::example_gemm();
  const GemmOperands o = exact(p);
  const kiln::detail::GemmAlgoKey base = kiln::detail::gemm_algo_key(0, p, o);
  const kiln::detail::GemmAlgoKeyHash hash;
  EXPECT_EQ(base, kiln::detail::gemm_algo_key(0, p, o));
  EXPECT_EQ(hash(base), hash(kiln::detail::gemm_algo_key(0, p, o)));
  std::vector<std::function<void(int&, GemmProblem&, GemmOperands&)>> changes = {
      [](int& d, GemmProblem&, GemmOperands&) { d = 1; },
      [](int&, GemmProblem& q, GemmOperands&) { q.a_dtype = q.b_dtype = DType::bf16; },
      [](int&, GemmProblem& q, GemmOperands&) { q.d_dtype = DType::f16; },
      [](int&, GemmProblem& q, GemmOperands&) { ++q.m; },
      [](int&, GemmProblem& q, GemmOperands&) { ++q.n; },
      [](int&, GemmProblem& q, GemmOperands&) { ++q.k; },
      [](int&, GemmProblem& q, GemmOperands&) { ++q.batch; },
      [](int&, GemmProblem& q, GemmOperands&) { q.trans_a = false; },
      [](int&, GemmProblem& q, GemmOperands&) { q.trans_b = true; },
      [](int&, GemmProblem& q, GemmOperands&) { ++q.lda; },
      [](int&, GemmProblem& q, GemmOperands&) { ++q.ldb; },
      [](int&, GemmProblem& q, GemmOperands&) { q.stride_a = 51; },
      [](int&, GemmProblem& q, GemmOperands&) { ++q.stride_b; },
      [](int&, GemmProblem& q, GemmOperands&) { q.epilogue = GemmEpilogue::bias; },
      [](int&, GemmProblem&, GemmOperands& r) { r.workspace_bytes *= 8; },
      [](int&, GemmProblem&, GemmOperands& r) {
        r.a.data = static_cast<char*>(r.a.data) + 2;  // 2-byte aligned
      },
      [](int&, GemmProblem&, GemmOperands& r) { r.b.data = static_cast<char*>(r.b.data) + 16; },
      [](int&, GemmProblem&, GemmOperands& r) { r.d.data = static_cast<char*>(r.d.data) + 4; },
      [](int&, GemmProblem&, GemmOperands& r) {
        r.bias.data = static_cast<char*>(r.bias.data) + 8;
      },
  };
  for (size_t c = 0; c < changes.size(); ++c) {
    int ordinal = 0;
    GemmProblem q = p;
    GemmOperands r = o;
    changes[c](ordinal, q, r);
    const kiln::detail::GemmAlgoKey key = kiln::detail::gemm_algo_key(ordinal, q, r);
    EXPECT_FALSE(key == base) << "change " << c;
    EXPECT_NE(hash(key), hash(base)) << "change " << c;
  }
  // What does not change the choice leaves the key alone: alpha (a scalar
  // the kernel takes), other pointers of the same alignment, and the bias
  // pointer of a gemm without a bias.
  GemmProblem q = p;
  q.alpha = 3;
  GemmOperands r = o;
  r.a.data = static_cast<char*>(r.a.data) + 4096;
  r.d.elements += 100;
  EXPECT_EQ(kiln::detail::gemm_algo_key(0, q, r), base);
  q.epilogue = GemmEpilogue::relu;
  r.bias.data = reinterpret_cast<void*>(0x3);
  const kiln::detail::GemmAlgoKey relu = kiln::detail::gemm_algo_key(0, q, r);
  r.bias.data = nullptr;
  EXPECT_EQ(kiln::detail::gemm_algo_key(0, q, r), relu);
}

TEST(GemmAlgoKey, AlignmentIsTheLargestPowerOfTwoUpTo256Bytes) {
  const auto log2 = [](uintptr_t a) {
    return kiln::detail::alignment_log2(reinterpret_cast<void*>(a));
  };
  EXPECT_EQ(log2(0x1000), 8);
  EXPECT_EQ(log2(0x1100), 8);
  EXPECT_EQ(log2(0x1080), 7);
  EXPECT_EQ(log2(0x1010), 4);
  EXPECT_EQ(log2(0x1002), 1);
  EXPECT_EQ(log2(0x1003), 0);
  EXPECT_EQ(kiln::detail::alignment_log2(nullptr), 8);
}

TEST(GemmAlgoCache, RunsTheHeuristicOncePerKeyHoweverManyThreadsAsk) {
  kiln::detail::GemmAlgoCache cache;
  std::atomic<int> chosen{0};
  std::vector<kiln::detail::GemmAlgoKey> keys;
  for (int k = 0; k < 4; ++k) {
    GemmProblem p = kiln_test::example_gemm();
    p.m = 3 + k;
    keys.push_back(kiln::detail::gemm_algo_key(0, p, exact(p)));
  }
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        const size_t k = static_cast<size_t>(i) % keys.size();
        const kiln::detail::GemmAlgo algo = cache.get(keys[k], [&] {
          chosen.fetch_add(1);
          kiln::detail::GemmAlgo a;
          a.algo[0] = k + 100;
          a.workspace_bytes = k * 1024;
          return a;
        });
        if (algo.algo[0] != k + 100 || algo.workspace_bytes != k * 1024) wrong.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(chosen.load(), 4);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(cache.misses(), 4u);
  EXPECT_EQ(cache.hits(), 8u * 100u - 4u);
  EXPECT_EQ(cache.size(), 4u);
}

TEST(GemmAlgoCache, AFailedChoiceIsNotKeptAndTheCacheStaysBounded) {
  kiln::detail::GemmAlgoCache cache;
  const GemmProblem p = kiln_test::example_gemm();
  const kiln::detail::GemmAlgoKey key = kiln::detail::gemm_algo_key(0, p, exact(p));
  EXPECT_THROW(cache.get(key, []() -> kiln::detail::GemmAlgo { throw std::runtime_error("no"); }),
               std::runtime_error);
  EXPECT_EQ(cache.size(), 0u);
  int runs = 0;
  cache.get(key, [&] {
    ++runs;
    return kiln::detail::GemmAlgo{};
  });
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(cache.misses(), 1u);
  kiln::detail::GemmAlgoKey other = key;
  for (size_t i = 0; i < kiln::detail::GemmAlgoCache::kCapacity; ++i) {
    other.m = 1000 + static_cast<int64_t>(i);
    cache.get(other, [] { return kiln::detail::GemmAlgo{}; });
  }
  // The key that found it full emptied it first.
  EXPECT_EQ(cache.size(), 1u);
}

TEST(CudaLauncherGemm, ABadGemmIsRefusedBeforeAnyDeviceIsTouched) {
  // Constructing the launcher reads the plan's launches: a library call's
  // kernel (kNoKernel) is no index into its kernels.
  const GemmProblem p = kiln_test::example_gemm();
  const std::vector<uint8_t> bytes =
      kiln_test::write_gemm_test_package(kiln_test::make_gemm_test_package(p));
  const kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
  kiln::detail::CudaLauncher launcher(reader, {});
  EXPECT_TRUE(launcher.package_has_cuda_targets());
  EXPECT_EQ(launcher.gemm_state(0), nullptr);
  GemmOperands short_b = exact(p);
  short_b.b.elements = 100;
  const std::string message =
      refusal([&] { launcher.run_gemm(0, p, short_b, nullptr, "mlp", "launch 0 (gemm)"); });
  EXPECT_EQ(message.rfind("kiln: graph 'mlp', launch 0 (gemm): B needs 170 f16 elements", 0), 0u)
      << message;
  // An empty D runs nothing, so it needs no device either.
  GemmProblem empty = p;
  empty.batch = 0;
  EXPECT_NO_THROW(launcher.run_gemm(0, empty, GemmOperands{}, nullptr, "mlp", "launch 0 (gemm)"));
  EXPECT_EQ(launcher.gemm_state(0), nullptr);
}

TEST(CudaLauncherGemm, AValidGemmWithoutADriverIsCudaUnavailable) {
  try {
    kiln::detail::CudaDriver::get();
    GTEST_SKIP() << "a CUDA driver is here: the gemm would run on the pretend pointers";
  } catch (const kiln::Error&) {
  }
  const GemmProblem p = kiln_test::example_gemm();
  const std::vector<uint8_t> bytes =
      kiln_test::write_gemm_test_package(kiln_test::make_gemm_test_package(p));
  const kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
  kiln::detail::CudaLauncher launcher(reader, {});
  refusal([&] { launcher.run_gemm(0, p, exact(p), nullptr, "mlp", "launch 0 (gemm)"); },
          ErrorCode::cuda_unavailable);
  refusal([&] { launcher.gemm_workspace_bytes(0); }, ErrorCode::cuda_unavailable);
}

TEST(CublasLtWorkspace, HopperAndNewerGet32MiB) {
  EXPECT_EQ(kiln::detail::cublaslt_workspace_bytes(80), size_t{4} << 20);
  EXPECT_EQ(kiln::detail::cublaslt_workspace_bytes(89), size_t{4} << 20);
  EXPECT_EQ(kiln::detail::cublaslt_workspace_bytes(90), size_t{32} << 20);
  EXPECT_EQ(kiln::detail::cublaslt_workspace_bytes(120), size_t{32} << 20);
}

// cuBLASLt's getters, from the library the runtime loaded (dlopen of the
// same file returns it): the test reads back what the runtime set.
struct Getters {
  int (*layout)(void*, int, void*, size_t, size_t*) = nullptr;
  int (*matmul)(void*, int, void*, size_t, size_t*) = nullptr;
};

const kiln::detail::CublasLtLibrary* installed_cublaslt(Getters& getters) {
  try {
    const kiln::detail::CublasLtLibrary& lt = kiln::detail::CublasLtLibrary::get("test");
    void* handle = ::dlopen(lt.path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) return nullptr;
    getters.layout = reinterpret_cast<decltype(getters.layout)>(
        ::dlsym(handle, "cublasLtMatrixLayoutGetAttribute"));
    getters.matmul = reinterpret_cast<decltype(getters.matmul)>(
        ::dlsym(handle, "cublasLtMatmulDescGetAttribute"));
    return getters.layout && getters.matmul ? &lt : nullptr;
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::library_unavailable);
    return nullptr;
  }
}

template <class T>
T layout_attribute(const Getters& g, uint64_t* layout, int attribute) {
  T value{};
  size_t written = 0;
  EXPECT_EQ(g.layout(layout, attribute, &value, sizeof value, &written), 0) << attribute;
  return value;
}

template <class T>
T matmul_attribute(const Getters& g, uint64_t* desc, int attribute) {
  T value{};
  size_t written = 0;
  EXPECT_EQ(g.matmul(desc, attribute, &value, sizeof value, &written), 0) << attribute;
  return value;
}

TEST(CublasLt, TheRowMajorGemmIsTheColumnMajorTransposeWithOperandsSwapped) {
  Getters g;
  const kiln::detail::CublasLtLibrary* lt = installed_cublaslt(g);
  if (lt == nullptr) GTEST_SKIP() << "cuBLASLt is not installed here";
  EXPECT_GE(lt->version, 120000u);
  EXPECT_EQ(lt->status_text(15).rfind("CUBLAS_STATUS_NOT_SUPPORTED", 0), 0u) << lt->status_text(15);
  EXPECT_EQ(lt->status_text(12345), "cublasStatus 12345");

  constexpr int kType = 0, kRows = 2, kCols = 3, kLd = 4, kBatch = 5, kStride = 6;
  int bias = 0;
  const GemmProblem p =
      kiln_test::example_gemm();  // trans_a, batch 2, A shared, bias_relu, f16 -> f32
  kiln::detail::GemmDescriptors d;
  kiln::detail::build_gemm_descriptors(*lt, p, &bias, d, kSite);
  // cuBLASLt's A is B's memory: stored k x n (17 x 5), column-major n x k.
  EXPECT_EQ(layout_attribute<uint32_t>(g, d.first, kType), 2u);  // CUDA_R_16F
  EXPECT_EQ(layout_attribute<uint64_t>(g, d.first, kRows), 5u);
  EXPECT_EQ(layout_attribute<uint64_t>(g, d.first, kCols), 17u);
  EXPECT_EQ(layout_attribute<int64_t>(g, d.first, kLd), 5);
  EXPECT_EQ(layout_attribute<int32_t>(g, d.first, kBatch), 2);
  EXPECT_EQ(layout_attribute<int64_t>(g, d.first, kStride), 85);
  // Its B is A's memory: stored k x m (17 x 3, trans_a), column-major m x k.
  EXPECT_EQ(layout_attribute<uint64_t>(g, d.second, kRows), 3u);
  EXPECT_EQ(layout_attribute<uint64_t>(g, d.second, kCols), 17u);
  EXPECT_EQ(layout_attribute<int64_t>(g, d.second, kLd), 3);
  EXPECT_EQ(layout_attribute<int64_t>(g, d.second, kStride), 0);
  // D^T: n x m, dense.
  EXPECT_EQ(layout_attribute<uint32_t>(g, d.d, kType), 0u);  // CUDA_R_32F
  EXPECT_EQ(layout_attribute<uint64_t>(g, d.d, kRows), 5u);
  EXPECT_EQ(layout_attribute<uint64_t>(g, d.d, kCols), 3u);
  EXPECT_EQ(layout_attribute<int64_t>(g, d.d, kLd), 5);
  EXPECT_EQ(layout_attribute<int32_t>(g, d.d, kBatch), 2);
  EXPECT_EQ(layout_attribute<int64_t>(g, d.d, kStride), 15);
  // op(B)^T needs no transpose, op(A)^T = A's memory transposed.
  constexpr int kComputeType = 0, kTransA = 3, kTransB = 4, kEpilogue = 7, kBiasPointer = 8,
                kBiasDType = 26;
  EXPECT_EQ(matmul_attribute<int32_t>(g, d.matmul, kComputeType), 68);  // CUBLAS_COMPUTE_32F
  EXPECT_EQ(matmul_attribute<int32_t>(g, d.matmul, kTransA), 0);
  EXPECT_EQ(matmul_attribute<int32_t>(g, d.matmul, kTransB), 1);
  EXPECT_EQ(matmul_attribute<uint32_t>(g, d.matmul, kEpilogue), 6u);  // RELU_BIAS
  EXPECT_EQ(matmul_attribute<const void*>(g, d.matmul, kBiasPointer), &bias);
  EXPECT_EQ(matmul_attribute<int32_t>(g, d.matmul, kBiasDType), 0);  // D's f32

  // One matrix, B transposed, no epilogue: no batch attributes, trans
  // flags the other way round.
  GemmProblem q = p;
  q.batch = 1;
  q.trans_a = false;
  q.lda = 17;
  q.trans_b = true;
  q.ldb = 17;
  q.epilogue = GemmEpilogue::none;
  q.a_dtype = q.b_dtype = q.d_dtype = DType::bf16;
  kiln::detail::build_gemm_descriptors(*lt, q, nullptr, d, kSite);
  EXPECT_EQ(layout_attribute<uint32_t>(g, d.first, kType), 14u);  // CUDA_R_16BF
  EXPECT_EQ(layout_attribute<uint64_t>(g, d.first, kRows), 17u);
  EXPECT_EQ(layout_attribute<uint64_t>(g, d.first, kCols), 5u);
  EXPECT_EQ(layout_attribute<uint64_t>(g, d.second, kRows), 17u);
  EXPECT_EQ(layout_attribute<uint64_t>(g, d.second, kCols), 3u);
  EXPECT_EQ(layout_attribute<int32_t>(g, d.d, kBatch), 1);
  EXPECT_EQ(matmul_attribute<int32_t>(g, d.matmul, kTransA), 1);
  EXPECT_EQ(matmul_attribute<int32_t>(g, d.matmul, kTransB), 0);
  EXPECT_EQ(matmul_attribute<uint32_t>(g, d.matmul, kEpilogue), 1u);  // DEFAULT
}

// A device, its arch as a Kiln target, and cuBLASLt; nullopt (and why) when
// this machine lacks one of them.
std::optional<std::string> gpu_target(std::string& why) {
  int devices = 0;
  try {
    const kiln::detail::CudaDriver& cu = kiln::detail::CudaDriver::get();
    if (cu.cuDeviceGetCount(&devices) != kiln::detail::kCudaSuccess || devices == 0) {
      why = "no CUDA device";
      return std::nullopt;
    }
    int major = 0;
    int minor = 0;
    cu.cuDeviceGetAttribute(&major, kiln::detail::kCuDeviceAttributeComputeCapabilityMajor, 0);
    cu.cuDeviceGetAttribute(&minor, kiln::detail::kCuDeviceAttributeComputeCapabilityMinor, 0);
    const std::string target = "cuda:sm_" + std::to_string(major * 10 + minor);
    if (!kiln::is_known_target_name(target)) {
      why = target + " is not a Kiln target";
      return std::nullopt;
    }
    kiln::detail::CublasLtLibrary::get("test");
    return target;
  } catch (const kiln::Error& e) {
    why = e.what();
    return std::nullopt;
  }
}

TEST(Gpu, TheSecondGemmOfAShapeHitsTheAlgorithmCache) {
  std::string why;
  const std::optional<std::string> target = gpu_target(why);
  if (!target) GTEST_SKIP() << why;
  GemmProblem p;
  p.a_dtype = p.b_dtype = p.d_dtype = DType::f16;
  p.m = p.n = p.k = p.lda = p.ldb = 64;
  p.epilogue = GemmEpilogue::bias;
  const std::vector<uint8_t> bytes =
      kiln_test::write_gemm_test_package(kiln_test::make_gemm_test_package(p, {*target}));
  const kiln::PackageReader reader = kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes));
  kiln::detail::CudaLauncher launcher(reader, {});
  const kiln::detail::CudaLauncher::ContextScope scope = launcher.enter(0);
  // The values do not matter here (gpu_gemm checks them): what is cached.
  const size_t operand_bytes = 64 * 64 * 2 + 256;
  const size_t workspace_bytes = launcher.gemm_workspace_bytes(0);
  GemmOperands o;
  std::byte* a = static_cast<std::byte*>(launcher.allocate(0, operand_bytes, nullptr));
  std::byte* b = static_cast<std::byte*>(launcher.allocate(0, operand_bytes, nullptr));
  std::byte* d = static_cast<std::byte*>(launcher.allocate(0, operand_bytes, nullptr));
  std::byte* bias = static_cast<std::byte*>(launcher.allocate(0, operand_bytes, nullptr));
  void* workspace = launcher.allocate(0, workspace_bytes, nullptr);
  o.a = {a, 64 * 64};
  o.b = {b, 64 * 64};
  o.d = {d, 64 * 64};
  o.bias = {bias, 64};
  o.workspace = workspace;
  o.workspace_bytes = workspace_bytes;
  EXPECT_EQ(launcher.gemm_state(0), nullptr);
  launcher.run_gemm(0, p, o, nullptr, "g", "launch 0 (gemm)");
  const kiln::detail::CublasLtGemm* state = launcher.gemm_state(0);
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->algorithms().misses(), 1u);
  launcher.run_gemm(0, p, o, nullptr, "g", "launch 0 (gemm)");
  EXPECT_EQ(state->algorithms().misses(), 1u);
  EXPECT_EQ(state->algorithms().hits(), 1u);
  // A pointer two bytes off is another alignment class: another choice.
  o.a = {a + 2, 64 * 64};
  launcher.run_gemm(0, p, o, nullptr, "g", "launch 0 (gemm)");
  EXPECT_EQ(state->algorithms().misses(), 2u);
  // k = 0 with a bias: a gemm of zeros, through the cache too.
  GemmProblem empty_product = p;
  empty_product.k = 0;
  launcher.run_gemm(0, empty_product, o, nullptr, "g", "launch 0 (gemm)");
  EXPECT_EQ(state->algorithms().misses(), 3u);
  EXPECT_EQ(kiln::detail::CudaDriver::get().cuStreamSynchronize(nullptr),
            kiln::detail::kCudaSuccess);
  for (void* buffer : {static_cast<void*>(a), static_cast<void*>(b), static_cast<void*>(d),
                       static_cast<void*>(bias)}) {
    launcher.deallocate(0, buffer, operand_bytes, nullptr);
  }
  launcher.deallocate(0, workspace, workspace_bytes, nullptr);
}

}  // namespace
