#include "guard_program.h"

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstring>

#include "kiln/support/hex.h"
#include "kiln/tensor_view.h"
#include "text.h"

namespace kiln::detail {
namespace {

// A device of compute capability `cc` runs code built for sm_<arch>: a cubin
// needs the same major and a minor no lower; PTX (has_ptx) any newer device.
bool arch_runs(int cc, int64_t arch, int64_t has_ptx) {
  if (cc <= 0) return false;
  return (cc / 10 == arch / 10 && cc >= arch) || (has_ptx != 0 && cc >= arch);
}

bool is_symbol_guard(fb::GuardKind kind) {
  return kind == fb::GuardKind::SymbolRange || kind == fb::GuardKind::SymbolDivisible;
}

bool uses_tensor(fb::GuardKind kind) {
  return !is_symbol_guard(kind) && kind != fb::GuardKind::CudaArch &&
         kind != fb::GuardKind::IndexWidth;
}

uint32_t packed(const DLDataType& t) {
  return static_cast<uint32_t>(t.code) | static_cast<uint32_t>(t.bits) << 8 |
         static_cast<uint32_t>(t.lanes) << 16;
}

bool dtype_matches(const DLDataType& actual, int64_t expected) {
  auto kiln_type = dtype_from_dlpack(actual);
  return kiln_type && static_cast<int64_t>(*kiln_type) == expected;
}

// Row-major strides, as PyTorch defines contiguity: a dim of size 1 is
// never stepped over, so its stride does not matter, and a tensor with no
// elements reads nothing, so none does.
bool row_major(const int64_t* shape, const int64_t* strides, int32_t ndim) noexcept {
  int64_t expected = 1;
  for (int32_t d = ndim - 1; d >= 0; --d) {
    if (shape[d] != 1 && strides[d] != expected) {
      return std::any_of(shape, shape + ndim, [](int64_t size) { return size == 0; });
    }
    expected *= shape[d];
  }
  return true;
}

bool is_contiguous(const DLTensor& t) {
  return t.strides == nullptr || row_major(t.shape, t.strides, t.ndim);
}

uintptr_t address_of(const DLTensor& t) {
  return reinterpret_cast<uintptr_t>(t.data) + static_cast<uintptr_t>(t.byte_offset);
}

std::string device_text(DLDevice device) {
  switch (device.device_type) {
    case kDLCPU:
      return "cpu";
    case kDLCUDA:
      return cat("cuda:", device.device_id);
    case kDLCUDAHost:
      return "cuda_host";
    case kDLCUDAManaged:
      return cat("cuda_managed:", device.device_id);
    case kDLROCM:
      return cat("rocm:", device.device_id);
    default:
      return cat("device_type ", static_cast<int>(device.device_type), ":", device.device_id);
  }
}

std::string device_type_text(int64_t type) {
  switch (type) {
    case kDLCPU:
      return "cpu";
    case kDLCUDA:
      return "cuda";
    default:
      return cat("device_type ", type);
  }
}

std::string shape_text(const DLTensor& t, bool strides) {
  std::string text = "(";
  for (int32_t d = 0; d < t.ndim; ++d) {
    if (d > 0) text += ", ";
    text += std::to_string(strides ? t.strides[d] : t.shape[d]);
  }
  return text + ")";
}

std::string row_major_strides_text(const DLTensor& t) {
  int64_t strides[kMaxTensorRank] = {};
  int64_t step = 1;
  const int32_t rank = t.ndim < kMaxTensorRank ? t.ndim : kMaxTensorRank;
  for (int32_t d = rank - 1; d >= 0; --d) {
    strides[d] = step;
    step *= t.shape[d];
  }
  std::string text = "(";
  for (int32_t d = 0; d < rank; ++d) {
    if (d > 0) text += ", ";
    text += std::to_string(strides[d]);
  }
  return text + ")";
}

std::string dim_subject(const GraphNames& names, uint16_t tensor, uint16_t dim) {
  return cat(names.tensors[tensor], ".shape[", dim, "]");
}

std::string range_text(int64_t lo, int64_t hi) {
  return lo == hi ? std::to_string(lo) : cat("in [", lo, ", ", hi, "]");
}

}  // namespace

GuardProgram::GuardProgram(const fb::Specialization& spec, const GraphNames& names) {
  symbol_count_ = names.symbols.size();
  for (size_t s = 0; s < symbol_count_; ++s) static_symbols_[s] = spec.symbol_values()->Get(s);

  const auto* guards = spec.guards();
  const uint32_t guard_count = guards ? guards->size() : 0;
  auto make_check = [this](const fb::Guard& g) {
    GuardCheck c{};
    if (g.kind() == fb::GuardKind::IndexWidth && g.extents() != nullptr) {
      c.extents_begin = static_cast<uint32_t>(extents_.size());
      c.extents_count = g.extents()->size();
      for (const fb::SizeExpr* e : *g.extents()) extents_.emplace_back(e, 0);
    }
    c.kind = g.kind();
    c.tensor = g.tensor();
    c.dim = g.dim();
    c.symbol = static_cast<int16_t>(g.symbol());
    c.bound_tensor = kFixedSymbol;
    c.value = g.value();
    c.value2 = g.value2();
    return c;
  };
  // Range and divisibility checks go right after the check that binds their
  // symbol, so a static specialization that does not fit fails on its first
  // shape rather than after every dtype and stride check.
  auto append_symbol_guards = [&](int32_t symbol) {
    for (uint32_t i = 0; i < guard_count; ++i) {
      const fb::Guard* g = guards->Get(i);
      if (is_symbol_guard(g->kind()) && g->symbol() == symbol) {
        checks_.push_back(make_check(*g));
      }
    }
  };

  struct Binder {
    uint16_t tensor = kFixedSymbol;
    uint16_t dim = 0;
  };
  Binder binder[kMaxSymbols];
  bool bound[kMaxSymbols] = {};
  for (size_t s = 0; s < symbol_count_; ++s) {
    if (static_symbols_[s] >= 0) {
      bound[s] = true;
      append_symbol_guards(static_cast<int32_t>(s));
    }
  }
  for (uint32_t i = 0; i < guard_count; ++i) {
    const fb::Guard* g = guards->Get(i);
    if (is_symbol_guard(g->kind())) continue;
    GuardCheck c = make_check(*g);
    if (c.kind == fb::GuardKind::DimSymbol) {
      const auto s = static_cast<size_t>(c.symbol);
      if (!bound[s]) {
        c.binds = true;
        bound[s] = true;
        binder[s] = {c.tensor, c.dim};
        checks_.push_back(c);
        append_symbol_guards(c.symbol);
        continue;
      }
      c.bound_tensor = binder[s].tensor;
      c.bound_dim = binder[s].dim;
    }
    checks_.push_back(c);
  }
  for (size_t s = 0; s < symbol_count_; ++s) {
    if (!bound[s]) {
      throw PackageError(
          ErrorCode::package_corrupt,
          cat("kiln: package specialization '", spec.name()->str(), "' neither fixes symbol ",
              names.symbols[s], " nor binds it from a tensor dim"));
    }
  }

  // The fused hit path. Its verdict equals the checks' in any order: every
  // check must pass, and a symbol's uses must agree, whichever binds it.
  for (size_t s = 0; s < symbol_count_; ++s) {
    symbol_min_[s] = INT64_MIN;
    symbol_max_[s] = INT64_MAX;
    symbol_divisor_[s] = 1;
    if (static_symbols_[s] >= 0) static_mask_ |= uint32_t{1} << s;
  }
  std::vector<int32_t> slot_of(names.tensors.size(), -1);
  std::vector<std::vector<DimCheck>> tensor_dims;
  auto tensor_check = [&](uint16_t tensor) -> TensorCheck& {
    if (tensor >= slot_of.size()) slot_of.resize(tensor + 1u, -1);
    if (slot_of[tensor] < 0) {
      slot_of[tensor] = static_cast<int32_t>(tensor_checks_.size());
      tensor_checks_.emplace_back();
      tensor_checks_.back().tensor = tensor;
      tensor_dims.emplace_back();
    }
    return tensor_checks_[static_cast<size_t>(slot_of[tensor])];
  };
  for (const GuardCheck& c : checks_) {
    switch (c.kind) {
      case fb::GuardKind::DType: {
        TensorCheck& t = tensor_check(c.tensor);
        if (t.check_dtype || c.value < 0 || c.value >= kDTypeCount) break;
        t.check_dtype = true;
        t.dtype = packed(to_dlpack(static_cast<DType>(c.value)));
        // Producers that predate kDLBool spell bool as uint8.
        t.dtype_alt = static_cast<DType>(c.value) == DType::boolean
                          ? packed(DLDataType{kDLUInt, 8, 1})
                          : t.dtype;
        continue;
      }
      case fb::GuardKind::Device: {
        TensorCheck& t = tensor_check(c.tensor);
        if (t.check_device) break;
        t.check_device = true;
        t.device_mask = 0xFFFFFFFFu;
        t.device_type = static_cast<uint32_t>(c.value);
        continue;
      }
      case fb::GuardKind::Rank: {
        TensorCheck& t = tensor_check(c.tensor);
        if (t.check_rank) break;
        t.check_rank = true;
        t.rank = static_cast<int32_t>(c.value);
        continue;
      }
      case fb::GuardKind::DimConst:
        tensor_check(c.tensor);
        tensor_dims[static_cast<size_t>(slot_of[c.tensor])].push_back(
            {DimCheck::kConst, c.dim, -1, c.value});
        continue;
      case fb::GuardKind::DimSymbol: {
        tensor_check(c.tensor);
        // A symbol the specialization fixes is a constant here.
        const int64_t fixed = static_symbols_[static_cast<size_t>(c.symbol)];
        tensor_dims[static_cast<size_t>(slot_of[c.tensor])].push_back(
            fixed >= 0 ? DimCheck{DimCheck::kConst, c.dim, -1, fixed}
                       : DimCheck{DimCheck::kSymbol, c.dim, c.symbol, 0});
        continue;
      }
      case fb::GuardKind::Contiguous:
        tensor_check(c.tensor).contiguous = true;
        continue;
      case fb::GuardKind::Alignment: {
        TensorCheck& t = tensor_check(c.tensor);
        const auto a = static_cast<uint64_t>(c.value);
        if (t.alignment_mask != 0 || (a & (a - 1)) != 0) break;
        t.alignment_mask = a - 1;
        continue;
      }
      case fb::GuardKind::SymbolRange: {
        const auto sym = static_cast<size_t>(c.symbol);
        symbol_min_[sym] = std::max(symbol_min_[sym], c.value);
        symbol_max_[sym] = std::min(symbol_max_[sym], c.value2);
        continue;
      }
      case fb::GuardKind::SymbolDivisible:
        if (symbol_divisor_[static_cast<size_t>(c.symbol)] != 1) break;
        symbol_divisor_[static_cast<size_t>(c.symbol)] = c.value;
        continue;
      case fb::GuardKind::CudaArch:
      case fb::GuardKind::IndexWidth:
        break;
    }
    other_checks_.push_back(c);
  }
  static_assert(offsetof(DLTensor, dtype) == offsetof(DLTensor, ndim) + sizeof(int32_t) &&
                    sizeof(DLDataType) == 4 && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
                "the fused rank and dtype compare reads DLTensor's ndim and dtype as one word");
  // The specialization's fixed symbol values against its own ranges: known
  // now, not per call.
  for (size_t sym = 0; sym < symbol_count_; ++sym) {
    if ((static_mask_ >> sym & 1u) != 0 && !symbol_fits(sym, static_symbols_[sym])) {
      static_symbols_fit_ = false;
    }
  }
  for (size_t i = 0; i < tensor_checks_.size(); ++i) {
    TensorCheck& t = tensor_checks_[i];
    const std::vector<DimCheck>& dims = tensor_dims[i];
    if (dims.size() > UINT8_MAX) {
      throw PackageError(ErrorCode::package_corrupt,
                         cat("kiln: package specialization '", spec.name()->str(), "' checks ",
                             dims.size(), " dims of tensor ", names.tensors[t.tensor]));
    }
    t.dim_begin = static_cast<uint32_t>(dims_.size());
    t.dim_count = static_cast<uint8_t>(dims.size());
    dims_.insert(dims_.end(), dims.begin(), dims.end());
    t.check_dim_bounds = !t.check_rank || std::any_of(dims.begin(), dims.end(),
                                                      [&](auto& d) { return d.dim >= t.rank; });
    t.dims_constant = !t.check_dim_bounds && std::all_of(dims.begin(), dims.end(), [](auto& d) {
      return d.kind == DimCheck::kConst;
    });
    if (t.dims_constant && t.contiguous && t.rank <= kMaxTensorRank &&
        dims.size() == static_cast<size_t>(t.rank)) {
      int64_t size_of_dim[kMaxTensorRank];
      uint32_t seen = 0;
      for (const DimCheck& d : dims) {
        seen |= uint32_t{1} << d.dim;
        size_of_dim[d.dim] = d.value;
      }
      if (seen == (uint32_t{1} << t.rank) - 1) {
        t.strides_constant = true;
        int64_t stride_of_dim[kMaxTensorRank];
        int64_t step = 1;
        const bool empty =
            std::any_of(size_of_dim, size_of_dim + t.rank, [](int64_t size) { return size == 0; });
        for (int32_t d = t.rank - 1; d >= 0; --d) {
          stride_of_dim[d] = size_of_dim[d] == 1 || empty ? -1 : step;
          if (__builtin_mul_overflow(step, size_of_dim[d], &step)) t.strides_constant = false;
        }
        for (uint32_t i = 0; i < t.dim_count; ++i) {
          DimCheck& d = dims_[t.dim_begin + i];
          d.stride = stride_of_dim[d.dim];
        }
      }
    }
    const uint64_t rank = static_cast<uint32_t>(t.rank);
    const uint64_t rank_mask = t.check_rank ? 0xFFFFFFFFull : 0;
    const uint64_t dtype_mask = t.check_dtype ? 0xFFFFFFFFull << 32 : 0;
    t.word_mask = rank_mask | dtype_mask;
    t.word = (rank | uint64_t{t.dtype} << 32) & t.word_mask;
    t.word_alt = (rank | uint64_t{t.dtype_alt} << 32) & t.word_mask;
  }
}

bool GuardProgram::covers_validation(size_t tensor_count) const noexcept {
  if (tensor_count > kMaxTensors) return false;
  bool seen[kMaxTensors] = {};
  for (const TensorCheck& t : tensor_checks_) {
    if (!t.check_rank || t.rank < 0 || t.rank > kMaxTensorRank) return false;
    uint32_t covered = 0;  // bit d: dim d is checked and never admits a negative size
    for (uint32_t i = 0; i < t.dim_count; ++i) {
      const DimCheck& d = dims_[t.dim_begin + i];
      const bool non_negative =
          d.kind == DimCheck::kConst ? d.value >= 0 : symbol_min_[d.symbol] >= 0;
      if (non_negative && d.dim < t.rank) covered |= uint32_t{1} << d.dim;
    }
    if (covered != (uint32_t{1} << t.rank) - 1) return false;
    seen[t.tensor] = true;
  }
  for (size_t t = 0; t < tensor_count; ++t) {
    if (!seen[t]) return false;
  }
  return true;
}

bool GuardProgram::extent_of(uint16_t tensor, TensorExtent& out) const noexcept {
  for (const TensorCheck& t : tensor_checks_) {
    if (t.tensor != tensor) continue;
    if (!t.check_rank || !t.check_dtype || t.check_dim_bounds || t.rank > kMaxTensorRank ||
        t.dim_count != t.rank) {
      return false;
    }
    // bits and lanes of the packed DLPack dtype.
    const int64_t bits = (t.dtype >> 8 & 0xFF) * (t.dtype >> 16);
    const int64_t alt_bits = (t.dtype_alt >> 8 & 0xFF) * (t.dtype_alt >> 16);
    if (bits % 8 != 0 || alt_bits != bits) return false;
    TensorExtent e;
    e.bytes_factor = bits / 8;
    uint32_t seen = 0;
    for (uint32_t i = 0; i < t.dim_count; ++i) {
      const DimCheck& d = dims_[t.dim_begin + i];
      seen |= uint32_t{1} << d.dim;
      if (d.kind == DimCheck::kConst) {
        if (__builtin_mul_overflow(e.bytes_factor, d.value, &e.bytes_factor)) return false;
      } else {
        e.symbols[e.symbol_count++] = d.symbol;
      }
    }
    if (seen != (uint32_t{1} << t.rank) - 1) return false;
    // Sorted, so that equal products compare equal (insertion: rank <= 8).
    for (uint8_t i = 1; i < e.symbol_count; ++i) {
      for (uint8_t j = i; j > 0 && e.symbols[j - 1] > e.symbols[j]; --j) {
        std::swap(e.symbols[j - 1], e.symbols[j]);
      }
    }
    out = e;
    return true;
  }
  return false;
}

bool GuardProgram::first_dim_of(int32_t symbol, uint16_t& tensor, uint16_t& dim) const noexcept {
  for (const GuardCheck& c : checks_) {
    if (c.kind == fb::GuardKind::DimSymbol && c.symbol == symbol) {
      tensor = c.tensor;
      dim = c.dim;
      return true;
    }
  }
  return false;
}

bool GuardProgram::checks_dim(int32_t symbol, uint16_t tensor, uint16_t dim) const noexcept {
  for (const GuardCheck& c : checks_) {
    if (c.kind == fb::GuardKind::DimSymbol && c.symbol == symbol && c.tensor == tensor &&
        c.dim == dim) {
      return true;
    }
  }
  return false;
}

bool GuardProgram::symbol_fits(size_t symbol, int64_t value) const noexcept {
  if (value < symbol_min_[symbol] || value > symbol_max_[symbol]) return false;
  return symbol_divisor_[symbol] == 1 || value % symbol_divisor_[symbol] == 0;
}

bool GuardProgram::dims_pass(const TensorCheck& c, const DLTensor& t, int64_t* symbols,
                             uint32_t& bound) const noexcept {
  const int64_t* const shape = t.shape;
  const DimCheck* const end = dims_.data() + c.dim_begin + c.dim_count;
  for (const DimCheck* d = dims_.data() + c.dim_begin; d != end; ++d) {
    if (c.check_dim_bounds && d->dim >= t.ndim) return false;
    const int64_t v = shape[d->dim];
    if (d->kind == DimCheck::kConst) {
      if (v != d->value) return false;
      continue;
    }
    const auto s = static_cast<size_t>(d->symbol);
    if ((bound >> s & 1u) == 0) {
      if (!symbol_fits(s, v)) return false;
      symbols[s] = v;
      bound |= uint32_t{1} << s;
    } else if (symbols[s] != v) {
      return false;
    }
  }
  return true;
}

bool GuardProgram::passes(const DLTensor* const* tensors, int64_t* symbols, int compute_capability,
                          bool& null_data) const noexcept {
  if (!static_symbols_fit_) return false;
  for (size_t s = 0; s < symbol_count_; ++s) symbols[s] = static_symbols_[s];
  uint32_t bound = static_mask_;
  bool saw_null_data = false;
  const DimCheck* const dims = dims_.data();
  for (const TensorCheck& c : tensor_checks_) {
    const DLTensor* const t = tensors[c.tensor];
    if (t == nullptr) return false;
    uint64_t word = 0;
    std::memcpy(&word, &t->ndim, sizeof word);
    word &= c.word_mask;
    if (word != c.word && word != c.word_alt) return false;
    if ((static_cast<uint32_t>(t->device.device_type) & c.device_mask) != c.device_type) {
      return false;
    }
    const int64_t* const shape = t->shape;
    if (c.dim_count != 0) {
      if (shape == nullptr) return false;
      if (c.dims_constant) {
        // Inline: what a static specialization checks for every tensor.
        const DimCheck* d = dims + c.dim_begin;
        const DimCheck* const end = d + c.dim_count;
        for (; d != end; ++d) {
          if (shape[d->dim] != d->value) return false;
        }
        const int64_t* const strides = t->strides;
        if (c.strides_constant && strides != nullptr) {
          for (d = dims + c.dim_begin; d != end; ++d) {
            if (d->stride >= 0 && strides[d->dim] != d->stride) return false;
          }
        }
      } else if (!dims_pass(c, *t, symbols, bound)) {
        return false;
      }
    }
    if (c.contiguous && !c.strides_constant && t->strides != nullptr &&
        ((shape == nullptr && t->ndim > 0) || !row_major(shape, t->strides, t->ndim))) {
      return false;
    }
    const auto data = reinterpret_cast<uintptr_t>(t->data);
    saw_null_data |= data == 0;
    // A mask, not a division: alignments are powers of two (others take
    // the generic path).
    if (((data + t->byte_offset) & c.alignment_mask) != 0) return false;
  }
  null_data |= saw_null_data;
  return other_checks_.empty() || other_checks_pass(tensors, symbols, compute_capability);
}

bool GuardProgram::other_checks_pass(const DLTensor* const* tensors, const int64_t* symbols,
                                     int compute_capability) const noexcept {
  for (const GuardCheck& c : other_checks_) {
    if (uses_tensor(c.kind) && tensors[c.tensor] == nullptr) {
      return false;
    }
    switch (c.kind) {
      case fb::GuardKind::DType:
        if (!dtype_matches(tensors[c.tensor]->dtype, c.value)) return false;
        break;
      case fb::GuardKind::Device:
        if (tensors[c.tensor]->device.device_type != c.value) return false;
        break;
      case fb::GuardKind::Rank:
        if (tensors[c.tensor]->ndim != c.value) return false;
        break;
      case fb::GuardKind::Alignment:
        if (address_of(*tensors[c.tensor]) % static_cast<uint64_t>(c.value) != 0) return false;
        break;
      case fb::GuardKind::SymbolDivisible:
        if (symbols[c.symbol] % c.value != 0) return false;
        break;
      case fb::GuardKind::CudaArch:
        if (!arch_runs(compute_capability, c.value, c.value2)) return false;
        break;
      case fb::GuardKind::IndexWidth:
        for (uint32_t e = 0; e < c.extents_count; ++e) {
          int64_t extent = 0;
          if (!extents_[c.extents_begin + e].try_evaluate(symbols, extent) || extent >= c.value) {
            return false;
          }
        }
        break;
      default:  // fused: DimConst, DimSymbol, Contiguous, SymbolRange
        break;
    }
  }
  return true;
}

void GuardProgram::collect_failures(const DLTensor* const* tensors,
                                    const std::string& specialization, const GraphNames& names,
                                    std::vector<FailedGuard>& out, int compute_capability) const {
  int64_t symbols[kMaxSymbols];
  bool bound[kMaxSymbols] = {};
  std::memcpy(symbols, static_symbols_, symbol_count_ * sizeof(int64_t));
  for (size_t s = 0; s < symbol_count_; ++s) bound[s] = static_symbols_[s] >= 0;

  auto fail = [&](const GuardCheck& c, std::string subject, std::string expected,
                  std::string actual) {
    out.push_back(
        {c.kind, {specialization, std::move(subject), std::move(expected), std::move(actual)}});
  };
  auto missing_dim = [](const DLTensor& t) { return cat("nothing (rank ", t.ndim, ")"); };

  for (const GuardCheck& c : checks_) {
    const DLTensor* t =
        uses_tensor(c.kind) || c.kind == fb::GuardKind::CudaArch ? tensors[c.tensor] : nullptr;
    switch (c.kind) {
      case fb::GuardKind::DType:
        if (!dtype_matches(t->dtype, c.value)) {
          fail(c, names.tensors[c.tensor] + ".dtype",
               std::string(dtype_name(static_cast<DType>(c.value))), dlpack_dtype_name(t->dtype));
        }
        break;
      case fb::GuardKind::Device:
        if (t->device.device_type != c.value) {
          fail(c, names.tensors[c.tensor] + ".device", device_type_text(c.value),
               device_text(t->device));
        }
        break;
      case fb::GuardKind::Rank:
        if (t->ndim != c.value) {
          fail(c, names.tensors[c.tensor] + ".rank", std::to_string(c.value),
               std::to_string(t->ndim));
        }
        break;
      case fb::GuardKind::DimConst:
        if (c.dim >= t->ndim) {
          fail(c, dim_subject(names, c.tensor, c.dim), std::to_string(c.value), missing_dim(*t));
        } else if (t->shape[c.dim] != c.value) {
          fail(c, dim_subject(names, c.tensor, c.dim), std::to_string(c.value),
               std::to_string(t->shape[c.dim]));
        }
        break;
      case fb::GuardKind::DimSymbol: {
        const std::string& symbol = names.symbols[c.symbol];
        if (c.dim >= t->ndim) {
          fail(c, dim_subject(names, c.tensor, c.dim), "a value for " + symbol, missing_dim(*t));
        } else if (c.binds) {
          symbols[c.symbol] = t->shape[c.dim];
          bound[c.symbol] = true;
        } else if (bound[c.symbol] && symbols[c.symbol] != t->shape[c.dim]) {
          std::string from = c.bound_tensor == kFixedSymbol
                                 ? std::string("fixed by this specialization")
                                 : "from " + dim_subject(names, c.bound_tensor, c.bound_dim);
          fail(c, dim_subject(names, c.tensor, c.dim),
               cat(symbol, " = ", symbols[c.symbol], " (", from, ")"),
               std::to_string(t->shape[c.dim]));
        }
        break;
      }
      case fb::GuardKind::SymbolRange:
        if (bound[c.symbol] && (symbols[c.symbol] < c.value || symbols[c.symbol] > c.value2)) {
          fail(c, "symbol " + names.symbols[c.symbol], range_text(c.value, c.value2),
               std::to_string(symbols[c.symbol]));
        }
        break;
      case fb::GuardKind::SymbolDivisible:
        if (bound[c.symbol] && symbols[c.symbol] % c.value != 0) {
          fail(c, "symbol " + names.symbols[c.symbol], cat("a multiple of ", c.value),
               std::to_string(symbols[c.symbol]));
        }
        break;
      case fb::GuardKind::Contiguous:
        if (!is_contiguous(*t)) {
          fail(c, names.tensors[c.tensor] + ".strides", "contiguous " + row_major_strides_text(*t),
               shape_text(*t, true));
        }
        break;
      case fb::GuardKind::Alignment: {
        const uintptr_t address = address_of(*t);
        const uint64_t rest = address % static_cast<uint64_t>(c.value);
        if (rest != 0) {
          fail(c, names.tensors[c.tensor] + ".data", cat("alignment ", c.value, " bytes"),
               cat("address ", support::hex_literal(address), " (", rest, " past a multiple of ",
                   c.value, ")"));
        }
        break;
      }
      case fb::GuardKind::IndexWidth: {
        // Only over symbols that bound: an unbound one failed its own dim.
        if (!std::all_of(bound, bound + symbol_count_, [](bool b) { return b; })) break;
        for (uint32_t e = 0; e < c.extents_count; ++e) {
          const SizeProgram& extent = extents_[c.extents_begin + e];
          int64_t value = 0;
          const bool known = extent.try_evaluate(symbols, value);
          if (known && value < c.value) continue;
          // By position, not as text: `kiln inspect` lists the extents,
          // and their printer would double this path's code in the runtime.
          fail(c, cat("index extent ", e), cat("< ", c.value, " (32-bit indexing)"),
               known ? std::to_string(value) : std::string("more than 64 bits hold"));
        }
        break;
      }
      case fb::GuardKind::CudaArch:
        if (!arch_runs(compute_capability, c.value, c.value2)) {
          fail(c, names.tensors[c.tensor] + ".device",
               c.value2 != 0 ? cat("a CUDA device of sm_", c.value, " or newer")
                             : cat("a CUDA device of sm_", c.value, " to sm_", c.value / 10, "9"),
               compute_capability > 0
                   ? cat(device_text(t->device), " (sm_", compute_capability, ")")
                   : device_text(t->device));
        }
        break;
    }
  }
}

std::string GuardProgram::describe(const fb::Guard& g, const GraphNames& names) {
  auto tensor = [&]() -> std::string {
    return g.tensor() < names.tensors.size() ? names.tensors[g.tensor()]
                                             : cat("tensor", g.tensor());
  };
  auto symbol = [&]() -> std::string {
    return g.symbol() >= 0 && static_cast<size_t>(g.symbol()) < names.symbols.size()
               ? names.symbols[g.symbol()]
               : cat("symbol", g.symbol());
  };
  switch (g.kind()) {
    case fb::GuardKind::DType: {
      const bool known = g.value() >= 0 && g.value() < kDTypeCount;
      return cat(tensor(), ".dtype == ",
                 known ? std::string(dtype_name(static_cast<DType>(g.value())))
                       : std::to_string(g.value()));
    }
    case fb::GuardKind::Device:
      return cat(tensor(), ".device == ", device_type_text(g.value()));
    case fb::GuardKind::Rank:
      return cat(tensor(), ".rank == ", g.value());
    case fb::GuardKind::DimConst:
      return cat(tensor(), ".shape[", g.dim(), "] == ", g.value());
    case fb::GuardKind::DimSymbol:
      return cat(tensor(), ".shape[", g.dim(), "] is ", symbol());
    case fb::GuardKind::SymbolRange:
      return g.value() == g.value2() ? cat(symbol(), " == ", g.value())
                                     : cat(symbol(), " in [", g.value(), ", ", g.value2(), "]");
    case fb::GuardKind::SymbolDivisible:
      return cat(symbol(), " % ", g.value(), " == 0");
    case fb::GuardKind::Contiguous:
      return cat(tensor(), " is contiguous");
    case fb::GuardKind::Alignment:
      return cat(tensor(), ".data % ", g.value(), " == 0");
    case fb::GuardKind::IndexWidth: {
      std::string extents;
      for (uint32_t e = 0; g.extents() && e < g.extents()->size(); ++e) {
        extents += cat(e ? ", " : "", size_expr_text(g.extents()->Get(e), names.symbols));
      }
      return cat("index extents < ", g.value(), " (32-bit indexing): ", extents);
    }
    case fb::GuardKind::CudaArch:
      return g.value2() != 0 ? cat(tensor(), ".device runs sm_", g.value(), " (cubin or PTX)")
                             : cat(tensor(), ".device runs sm_", g.value(), " (cubin)");
  }
  return cat("unknown guard kind ", static_cast<int>(g.kind()));
}

}  // namespace kiln::detail
