// KILN_STANCE pins the stance a package opens with; KILN_LOG=recompiles
// prints one line per failed guard of a miss, naming graph, specialization,
// guard, expected and actual.
#include <cstdlib>

#include <gtest/gtest.h>

#include "kiln/runtime.h"
#include "test_support/cpu_test_package.h"
#include "test_support/scratch_files.h"

namespace {

kiln_test::TestGraphOptions small_range() {
  kiln_test::TestGraphOptions o;
  o.n_max = 100;  // "general" covers n in [1, 100]; "n=8" only 8
  return o;
}

void call_rows(kiln::Package& p, int64_t rows) {
  std::vector<float> x(static_cast<size_t>(rows) * 64, 1.0f), w(64, 2.0f),
      y(static_cast<size_t>(rows) * 64);
  p.graph("scale_add")
      .call({kiln::TensorView(x.data(), kiln::DType::f32, {rows, 64}),
             kiln::TensorView(w.data(), kiln::DType::f32, {64})},
            {kiln::TensorView(y.data(), kiln::DType::f32, {rows, 64})});
}

TEST(StanceEnv, KilnStanceOverridesTheOpenOptions) {
  const std::vector<uint8_t> bytes = kiln_test::make_test_package({small_range()});
  {
    kiln_test::ScopedEnv env("KILN_STANCE", "fail_on_recompile");
    kiln::Package p =
        kiln::Package::open_memory(kiln_test::as_bytes(bytes), {.stance = kiln::Stance::fallback});
    EXPECT_EQ(p.stance(), kiln::Stance::fail_on_recompile);
    EXPECT_THROW(call_rows(p, 200), kiln::RecompileError);
    p.set_stance(kiln::Stance::fallback);  // the API still wins after open
    EXPECT_THROW(call_rows(p, 200), kiln::NoSpecializationError);
  }
  {
    kiln_test::ScopedEnv env("KILN_STANCE", "fallback");
    kiln::Package p = kiln::Package::open_memory(kiln_test::as_bytes(bytes),
                                                 {.stance = kiln::Stance::fail_on_recompile});
    EXPECT_EQ(p.stance(), kiln::Stance::fallback);
  }
  kiln::Package unset = kiln::Package::open_memory(kiln_test::as_bytes(bytes),
                                                   {.stance = kiln::Stance::fail_on_recompile});
  EXPECT_EQ(unset.stance(), kiln::Stance::fail_on_recompile);
}

TEST(StanceEnv, AnUnknownKilnStanceIsRefusedNamingTheAcceptedValues) {
  const std::vector<uint8_t> bytes = kiln_test::make_test_package({small_range()});
  kiln_test::ScopedEnv env("KILN_STANCE", "eager");
  try {
    kiln::Package::open_memory(kiln_test::as_bytes(bytes));
    FAIL() << "no error";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), kiln::ErrorCode::invalid_argument);
    EXPECT_STREQ(e.what(),
                 "kiln: KILN_STANCE: expected 'fallback' or 'fail_on_recompile', got 'eager'");
  }
}

TEST(StanceEnv, KilnLogRecompilesNamesEachFailedGuard) {
  const std::vector<uint8_t> bytes = kiln_test::make_test_package({small_range()});
  kiln::Package p = kiln::Package::open_memory(kiln_test::as_bytes(bytes),
                                               {.stance = kiln::Stance::fail_on_recompile});
  {
    kiln_test::ScopedEnv env("KILN_LOG", "cache,recompiles");
    testing::internal::CaptureStderr();
    EXPECT_THROW(call_rows(p, 200), kiln::RecompileError);
    const std::string log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("kiln: recompile: graph 'scale_add' (stance fail_on_recompile): "
                       "specialization 'n=8': "),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("x.shape[0] expected n = 8 (fixed by this specialization), actual 200\n"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("specialization 'general': symbol n expected in [1, 100], actual 200\n"),
              std::string::npos)
        << log;
  }
  // Off unless asked for.
  testing::internal::CaptureStderr();
  EXPECT_THROW(call_rows(p, 200), kiln::RecompileError);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  // A hit logs nothing even when asked.
  kiln_test::ScopedEnv env("KILN_LOG", "recompiles");
  testing::internal::CaptureStderr();
  call_rows(p, 8);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

}  // namespace
