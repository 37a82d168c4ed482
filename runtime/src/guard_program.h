// A specialization's guards compiled into a flat array of small POD checks.
// passes() is the hit path: no allocation, no lock, stops at the first
// failing check. collect_failures() is the miss path: it runs every check
// and says, in words, what was expected and what came.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <dlpack/dlpack.h>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/error.h"
#include "kiln/package_reader.h"

namespace kiln::detail {

// Names for messages: inputs then outputs, and the graph's symbols.
struct GraphNames {
  std::vector<std::string> tensors;
  std::vector<std::string> symbols;
};

inline constexpr uint16_t kFixedSymbol = 0xFFFF;

struct GuardCheck {
  fb::GuardKind kind;
  // DimSymbol: this check is the symbol's first sight, so it binds.
  bool binds;
  uint16_t tensor;
  uint16_t dim;
  int16_t symbol;
  // DimSymbol equality checks: where the symbol got its value, to say
  // "from x.shape[0]"; bound_tensor == kFixedSymbol when the specialization
  // fixes it.
  uint16_t bound_tensor;
  uint16_t bound_dim;
  int64_t value;
  int64_t value2;
};

struct FailedGuard {
  fb::GuardKind kind;
  GuardFailure failure;
};

class GuardProgram {
 public:
  GuardProgram() = default;
  // Throws PackageError(package_corrupt) when a symbol is neither fixed by
  // symbol_values nor bound by a DimSymbol guard (kernels would read garbage).
  GuardProgram(const fb::Specialization& spec, const GraphNames& names);

  // On success `symbols` holds every symbol's value. `symbols` must hold
  // kMaxSymbols values. `compute_capability` (major * 10 + minor) is the
  // call's CUDA device's, 0 for a CPU call.
  bool passes(const DLTensor* const* tensors, int64_t* symbols,
              int compute_capability = 0) const noexcept;

  void collect_failures(const DLTensor* const* tensors, const std::string& specialization,
                        const GraphNames& names, std::vector<FailedGuard>& out,
                        int compute_capability = 0) const;

  // Guards in readable form ("x.shape[0] binds n"), for inspect.
  static std::string describe(const fb::Guard& guard, const GraphNames& names);

 private:
  std::vector<GuardCheck> checks_;
  int64_t static_symbols_[kMaxSymbols] = {};
  size_t symbol_count_ = 0;
};

}  // namespace kiln::detail
