// kiln/support/env.h: a variable set to the empty string reads as unset, as
// every caller in the tree treated it before the helper existed.
#include <stdlib.h>

#include <string>

#include <gtest/gtest.h>

#include "kiln/support/env.h"

namespace {

using kiln::support::env_value;

constexpr const char* kName = "KILN_TEST_SUPPORT_ENV";

TEST(SupportEnv, UnsetIsNullopt) {
  ASSERT_EQ(::unsetenv(kName), 0);
  EXPECT_EQ(env_value(kName), std::nullopt);
}

TEST(SupportEnv, EmptyIsUnset) {
  ASSERT_EQ(::setenv(kName, "", 1), 0);
  EXPECT_EQ(env_value(kName), std::nullopt);
  ::unsetenv(kName);
}

TEST(SupportEnv, SetIsItsValueVerbatim) {
  ASSERT_EQ(::setenv(kName, " a=b,c ", 1), 0);
  ASSERT_TRUE(env_value(kName).has_value());
  EXPECT_EQ(*env_value(kName), " a=b,c ");
  // A value of "0" is still a value: what it means is the caller's to say.
  ASSERT_EQ(::setenv(kName, "0", 1), 0);
  EXPECT_EQ(env_value(kName).value_or("unset"), "0");
  ::unsetenv(kName);
}

}  // namespace
