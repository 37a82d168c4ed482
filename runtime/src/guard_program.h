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

// A specialization's checks of one tensor, fused so that the hit path reads
// each DLTensor once: dtype (as DLPack's packed code/bits/lanes, with a
// second accepted encoding for bool), device, rank, each dim (a constant or
// a symbol), contiguity and alignment.
struct TensorCheck {
  static constexpr uint8_t kDimConst = 0;
  static constexpr uint8_t kDimSymbol = 1;
  struct DimCheck {
    uint8_t kind;
    uint16_t dim;
    int16_t symbol;
    int64_t value;
  };
  uint16_t tensor = 0;
  // Rank and dtype in one 8-byte compare: DLTensor::ndim and ::dtype are
  // adjacent (int32 then 4 bytes), so (rank | dtype << 32) is what a
  // matching tensor holds there. A second accepted value for bool.
  bool check_ndim_dtype = false;
  uint64_t ndim_dtype = 0;
  uint64_t ndim_dtype_alt = 0;
  bool check_dtype = false;
  bool check_device = false;
  bool check_rank = false;
  bool contiguous = false;
  uint32_t dtype = 0;
  uint32_t dtype_alt = 0;
  int32_t device_type = 0;
  int32_t rank = 0;
  uint64_t alignment_mask = 0;  // alignment - 1 (a power of two); 0: no check
  std::vector<DimCheck> dims;
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
  bool symbol_fits(size_t symbol, int64_t value) const noexcept;
  bool other_checks_pass(const DLTensor* const* tensors, const int64_t* symbols,
                         int compute_capability) const noexcept;

  std::vector<GuardCheck> checks_;  // every guard, in order: the miss path
  // The hit path: per-tensor fused checks, each symbol's range and
  // divisibility (applied when it binds), and what fits neither (CudaArch,
  // a second guard of one kind on one tensor).
  std::vector<TensorCheck> tensor_checks_;
  int64_t symbol_min_[kMaxSymbols] = {};
  int64_t symbol_max_[kMaxSymbols] = {};
  int64_t symbol_divisor_[kMaxSymbols] = {};
  std::vector<GuardCheck> other_checks_;
  uint32_t static_mask_ = 0;        // bit s: symbol s is fixed by the specialization
  bool static_symbols_fit_ = true;  // the fixed values are within their ranges
  int64_t static_symbols_[kMaxSymbols] = {};
  size_t symbol_count_ = 0;
};

}  // namespace kiln::detail
