// Hex text of 64- and 128-bit values, lowercase, as hashes, keys and
// addresses are shown everywhere in Kiln (manifests, profiles, cache file
// names, error messages).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace kiln::support {

// Appends exactly 16 digits, zero-padded: one half of a hash.
void append_hex16(std::string& out, uint64_t value);

// 32 digits, `hi` first: a 128-bit hash (XXH3-128) as one string.
std::string hex128(uint64_t hi, uint64_t lo);

// "0x" and the digits without leading zeros ("0x0" for zero), as a C
// literal: addresses and header fields in messages.
std::string hex_literal(uint64_t value);

// Whether `text` is non-empty and only lowercase hex digits.
bool is_lower_hex(std::string_view text) noexcept;

// Two lowercase digits per byte, in order: keys and signatures as text.
std::string hex_bytes(std::span<const uint8_t> bytes);

// The bytes `text` spells as hex_bytes() writes them; false, leaving `out`
// unspecified, unless `text` is exactly 2 * out.size() lowercase hex digits.
bool parse_hex_bytes(std::string_view text, std::span<uint8_t> out) noexcept;

}  // namespace kiln::support
