// Which specializations a call tries, found by the shapes that key the
// static ones: at open, each static specialization is filed under the
// values it fixes; per call, the symbols' dims are read once and hashed, so
// selection runs one matching static program (or none) and then the
// general ones, instead of every static program in turn. The verdict is the
// one a scan of every candidate in selection order gives: a static
// specialization left out checks the key's dim against a value the call's
// dim is not.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <dlpack/dlpack.h>

#include "guard_program.h"

namespace kiln::detail {

class SelectionTable {
 public:
  SelectionTable() = default;
  // `order`: specialization indices in selection order; `programs[i]` is
  // specialization i's guards. `tensor_count`: the graph's inputs + outputs.
  SelectionTable(std::vector<uint32_t> order, const std::vector<const GuardProgram*>& programs,
                 size_t tensor_count);

  // The specializations to try for this call, in selection order. Reads
  // only the key dims, and tolerates arguments that were not validated.
  std::span<const uint32_t> candidates(const DLTensor* const* tensors) const noexcept;

  // Every candidate, in selection order.
  std::span<const uint32_t> all() const noexcept { return order_; }

  // A pass of any candidate implies valid arguments
  // (GuardProgram::covers_validation), so a call may guard first.
  bool covers_validation() const noexcept { return covers_validation_; }

  // "n (x.shape[0]): 10 values", or "" when nothing is keyed: for inspect
  // and tests.
  std::string describe(const GraphNames& names) const;

 private:
  struct KeySlot {
    uint16_t tensor;
    uint16_t dim;
    int32_t symbol;
  };
  struct Bucket {
    uint32_t key = 0;  // into keys_, key_.size() values
    uint32_t list = 0;
    uint32_t count = 0;  // 0: empty bucket
  };

  uint64_t hash(const int64_t* values) const noexcept;

  std::vector<uint32_t> order_;
  std::vector<KeySlot> key_;
  std::vector<Bucket> buckets_;  // open addressing, a power of two
  std::vector<int64_t> keys_;
  std::vector<uint32_t> lists_;
  uint32_t unkeyed_begin_ = 0;  // into lists_: the candidates when no key matches
  uint32_t unkeyed_count_ = 0;
  size_t keyed_values_ = 0;
  bool covers_validation_ = false;
};

}  // namespace kiln::detail
