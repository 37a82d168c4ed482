#include "symbol_binding.h"

#include <algorithm>

namespace kiln::detail {

bool bind_symbols(const fb::GraphEntry& entry, const DLTensor* const* tensors, int64_t* values) {
  const uint32_t symbol_count = entry.symbols() ? entry.symbols()->size() : 0;
  std::fill(values, values + symbol_count, int64_t{-1});
  size_t t = 0;
  for (const auto* specs : {entry.inputs(), entry.outputs()}) {
    if (specs == nullptr) continue;
    for (const fb::TensorSpec* spec : *specs) {
      const DLTensor& tensor = *tensors[t++];
      const uint32_t rank = spec->dims() ? spec->dims()->size() : 0;
      if (static_cast<uint32_t>(tensor.ndim) != rank) return false;
      for (uint32_t d = 0; d < rank; ++d) {
        const fb::Dim* dim = spec->dims()->Get(d);
        const int64_t size = tensor.shape[d];
        if (dim->symbol() < 0) {
          if (size != dim->value()) return false;
          continue;
        }
        int64_t& bound = values[dim->symbol()];
        if (bound >= 0 && bound != size) return false;
        bound = size;
      }
    }
  }
  return std::none_of(values, values + symbol_count, [](int64_t v) { return v < 0; });
}

}  // namespace kiln::detail
