// XXH3-128, the package format's checksum and each blob's hash
// (docs/package-format.md), in a file of its own: it runs over every byte of
// a package at open, so it is built for speed while the reader around it is
// built for size (runtime/CMakeLists.txt).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln::detail {

struct Xxh3Hash128 {
  uint64_t lo;
  uint64_t hi;
};

Xxh3Hash128 xxh3_128(const void* data, size_t size) noexcept;

}  // namespace kiln::detail
