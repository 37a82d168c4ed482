// kiln/support/hex.h: the digits every hash, key and address is shown with.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

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

TEST(SupportHex, BytesRoundTripAndOnlyExactLowercaseTextParses) {
  const std::vector<uint8_t> bytes = {0x00, 0x7f, 0x80, 0xff, 0x1a};
  EXPECT_EQ(kiln::support::hex_bytes(bytes), "007f80ff1a");
  std::vector<uint8_t> back(5);
  EXPECT_TRUE(kiln::support::parse_hex_bytes("007f80ff1a", back));
  EXPECT_EQ(back, bytes);
  EXPECT_FALSE(kiln::support::parse_hex_bytes("007F80ff1a", back));  // uppercase
  EXPECT_FALSE(kiln::support::parse_hex_bytes("007f80ff1", back));   // odd length
  EXPECT_FALSE(kiln::support::parse_hex_bytes("007f80ff1a00", back));
  EXPECT_FALSE(kiln::support::parse_hex_bytes("007f80ff1g", back));
  EXPECT_FALSE(kiln::support::parse_hex_bytes(" 07f80ff1a", back));
  EXPECT_TRUE(kiln::support::parse_hex_bytes("", std::span<uint8_t>()));
}

}  // namespace
