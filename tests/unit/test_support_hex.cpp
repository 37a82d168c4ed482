// kiln/support/hex.h: the digits every hash, key and address is shown with.
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "kiln/support/hex.h"

namespace {
using kiln::support::append_hex16;
using kiln::support::hex128;
using kiln::support::hex_literal;
using kiln::support::is_lower_hex;

TEST(SupportHex, SixteenDigitsZeroPaddedAppended) {
  std::string out = "key ";
  append_hex16(out, 0);
  EXPECT_EQ(out, "key 0000000000000000");
  out.clear();
  append_hex16(out, 0x0123456789abcdefULL);
  append_hex16(out, UINT64_MAX);
  EXPECT_EQ(out, "0123456789abcdefffffffffffffffff");
}

TEST(SupportHex, Hash128IsHiThenLo) {
  EXPECT_EQ(hex128(1, 2), "00000000000000010000000000000002");
  EXPECT_EQ(hex128(0xfedcba9876543210ULL, 0xa), "fedcba9876543210000000000000000a");
}

TEST(SupportHex, LiteralHasNoLeadingZeros) {
  EXPECT_EQ(hex_literal(0), "0x0");
  EXPECT_EQ(hex_literal(0xf), "0xf");
  EXPECT_EQ(hex_literal(0x10), "0x10");
  EXPECT_EQ(hex_literal(0x7f00dead0040ULL), "0x7f00dead0040");
  EXPECT_EQ(hex_literal(UINT64_MAX), "0xffffffffffffffff");
}

TEST(SupportHex, LowerHexCheck) {
  EXPECT_TRUE(is_lower_hex("0123456789abcdef"));
  EXPECT_FALSE(is_lower_hex(""));
  EXPECT_FALSE(is_lower_hex("ABCDEF"));
  EXPECT_FALSE(is_lower_hex("12g4"));
  EXPECT_FALSE(is_lower_hex("0x12"));
}

}  // namespace
