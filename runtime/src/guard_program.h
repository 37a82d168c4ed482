// A specialization's guards compiled into a flat array of small POD checks.
// passes() is the hit path: no allocation, no lock, stops at the first
// failing check. collect_failures() is the miss path: it runs every check
// and says, in words, what was expected and what came.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <dlpack/dlpack.h>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/error.h"
#include "kiln/package_reader.h"
#include "kiln/runtime_internal/size_expr.h"
#include "kiln/tensor_view.h"

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
  // IndexWidth: its extents, in GuardProgram::extents_.
  uint32_t extents_begin;
  uint32_t extents_count;
};

// One dim of a tensor on the hit path: a constant (also a symbol the
// specialization fixes) or a symbol that binds, or must equal its binding.
struct DimCheck {
  static constexpr uint8_t kConst = 0;
  static constexpr uint8_t kSymbol = 1;
  uint8_t kind;
  uint16_t dim;
  int16_t symbol;
  int64_t value;
  // TensorCheck::strides_constant: the row-major stride this dim must have,
  // or -1 for any (a dim of size 1 is never stepped over).
  int64_t stride = -1;
};

// A specialization's checks of one tensor, fused so that the hit path reads
// each DLTensor once: rank and dtype (one masked 8-byte compare), device,
// each dim, contiguity and alignment.
struct TensorCheck {
  // DLTensor::ndim and ::dtype are adjacent (int32 then 4 bytes), so
  // (rank | packed dtype << 32), masked to what is checked, is what a
  // matching tensor holds there. `word_alt`: bool's second encoding.
  uint64_t word_mask = 0;
  uint64_t word = 0;
  uint64_t word_alt = 0;
  uint64_t alignment_mask = 0;  // alignment - 1 (a power of two); 0: no check
  uint32_t dim_begin = 0;       // into GuardProgram::dims_
  uint16_t tensor = 0;
  uint8_t dim_count = 0;
  bool contiguous = false;
  // Every dim is a constant within the checked rank: the common case of a
  // static specialization, compared without bounds or symbol bookkeeping.
  bool dims_constant = false;
  // Contiguity folded into the constant dims: each dim's row-major stride
  // is known at open.
  bool strides_constant = false;
  // Some dim may lie beyond the tensor's rank (no rank check covers it).
  bool check_dim_bounds = true;
  // DLDevice::device_type masked (0: no check) against the expected type.
  uint32_t device_mask = 0;
  uint32_t device_type = 0;
  // Construction only.
  bool check_device = false;
  // Construction only: what the fused word holds.
  bool check_dtype = false;
  bool check_rank = false;
  uint32_t dtype = 0;
  uint32_t dtype_alt = 0;
  int32_t rank = 0;
};

// What a pass of the guards says about a tensor's size: its bytes are
// bytes_factor times the product of `symbols`' values.
struct TensorExtent {
  int64_t bytes_factor = 1;
  uint8_t symbol_count = 0;
  int16_t symbols[kMaxTensorRank] = {};
  friend bool operator==(const TensorExtent&, const TensorExtent&) = default;
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
  // call's CUDA device's, 0 for a CPU call. Safe on arguments that were not
  // validated: a NULL tensor, or a NULL shape where a dim is checked, fails.
  // `null_data` is set when a tensor it looked at has NULL data (valid only
  // for an empty tensor, which the caller must then check).
  bool passes(const DLTensor* const* tensors, int64_t* symbols, int compute_capability,
              bool& null_data) const noexcept;
  bool passes(const DLTensor* const* tensors, int64_t* symbols,
              int compute_capability = 0) const noexcept {
    bool null_data = false;
    return passes(tensors, symbols, compute_capability, null_data);
  }

  // A pass implies the call's arguments are valid (graph_dispatch.cpp's validate):
  // each of the `tensor_count` tensors has its rank and every dim checked,
  // and no check admits a negative dim. Then a call may run the guards
  // before validating.
  bool covers_validation(size_t tensor_count) const noexcept;

  // False when the guards leave the tensor's size open (its rank, dtype or
  // a dim unchecked): then only the tensor itself says.
  bool extent_of(uint16_t tensor, TensorExtent& out) const noexcept;

  // Bit s: the specialization fixes symbol s; its value.
  uint32_t static_mask() const noexcept { return static_mask_; }
  int64_t static_value(size_t symbol) const noexcept { return static_symbols_[symbol]; }
  // The first tensor dim that this program checks against `symbol`.
  bool first_dim_of(int32_t symbol, uint16_t& tensor, uint16_t& dim) const noexcept;
  // This program checks tensor.shape[dim] against `symbol`.
  bool checks_dim(int32_t symbol, uint16_t tensor, uint16_t dim) const noexcept;

  // Cold (built for size, its callers' branches to it predicted not
  // taken): it runs on a miss only, which compiles or throws anyway.
  [[gnu::cold]] void collect_failures(const DLTensor* const* tensors,
                                      const std::string& specialization, const GraphNames& names,
                                      std::vector<FailedGuard>& out,
                                      int compute_capability = 0) const;

  // Guards in readable form ("x.shape[0] binds n"), for inspect.
  static std::string describe(const fb::Guard& guard, const GraphNames& names);

 private:
  bool symbol_fits(size_t symbol, int64_t value) const noexcept;
  bool dims_pass(const TensorCheck& c, const DLTensor& t, int64_t* symbols,
                 uint32_t& bound) const noexcept;
  bool other_checks_pass(const DLTensor* const* tensors, const int64_t* symbols,
                         int compute_capability) const noexcept;

  std::vector<GuardCheck> checks_;  // every guard, in order: the miss path
  // The hit path: per-tensor fused checks, each symbol's range and
  // divisibility (applied when it binds), and what fits neither (CudaArch,
  // a second guard of one kind on one tensor).
  std::vector<TensorCheck> tensor_checks_;
  std::vector<DimCheck> dims_;
  int64_t symbol_min_[kMaxSymbols] = {};
  int64_t symbol_max_[kMaxSymbols] = {};
  int64_t symbol_divisor_[kMaxSymbols] = {};
  std::vector<GuardCheck> other_checks_;
  std::vector<SizeProgram> extents_;
  uint32_t static_mask_ = 0;        // bit s: symbol s is fixed by the specialization
  bool static_symbols_fit_ = true;  // the fixed values are within their ranges
  int64_t static_symbols_[kMaxSymbols] = {};
  size_t symbol_count_ = 0;
};

}  // namespace kiln::detail
