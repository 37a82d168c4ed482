#include "xxh3.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace kiln::detail {

Xxh3Hash128 xxh3_128(const void* data, size_t size) noexcept {
  const XXH128_hash_t hash = XXH3_128bits(data, size);
  return {hash.low64, hash.high64};
}

}  // namespace kiln::detail
