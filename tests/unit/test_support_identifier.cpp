// kiln/support/identifier.h: C identifiers, ASCII whatever the locale.
#include <string>

#include <gtest/gtest.h>

#include "kiln/support/identifier.h"

namespace {
using kiln::support::c_identifier;
using kiln::support::is_c_identifier;

TEST(SupportIdentifier, AcceptsCIdentifiers) {
  for (const char* name : {"x", "_", "_x1", "rmsnorm", "Graph_2", "a__b"}) {
    EXPECT_TRUE(is_c_identifier(name)) << name;
  }
}

TEST(SupportIdentifier, RejectsEverythingElse) {
  for (const char* name : {"", "1x", "9", "a-b", "a b", "a.b", "x=", "ü", "a\tb"}) {
    EXPECT_FALSE(is_c_identifier(name)) << name;
  }
  // Bytes past ASCII are never letters, in any locale.
  EXPECT_FALSE(is_c_identifier(std::string("a\xe9")));
}

TEST(SupportIdentifier, MakesAnIdentifierOfAnyText) {
  EXPECT_EQ(c_identifier("rmsnorm"), "rmsnorm");
  EXPECT_EQ(c_identifier("my-kernels.v2"), "my_kernels_v2");
  EXPECT_EQ(c_identifier("2d"), "_2d");
  EXPECT_EQ(c_identifier(""), "_");
  EXPECT_EQ(c_identifier("a b\xe9"), "a_b_");
  for (const char* text : {"", "1", "a-b", "\xff"})
    EXPECT_TRUE(is_c_identifier(c_identifier(text)));
}

}  // namespace
