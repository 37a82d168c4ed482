#include "selection_table.h"

#include <algorithm>

#include "kiln/package_reader.h"
#include "text.h"

namespace kiln::detail {

SelectionTable::SelectionTable(std::vector<uint32_t> order,
                               const std::vector<const GuardProgram*>& programs,
                               size_t tensor_count)
    : order_(std::move(order)) {
  covers_validation_ = std::all_of(order_.begin(), order_.end(), [&](uint32_t i) {
    return programs[i]->covers_validation(tensor_count);
  });

  // The key: the symbols the first static specialization fixes, each read
  // where that specialization first checks it. Specializations fixing
  // another set of symbols, or checking them elsewhere, stay unkeyed and are
  // tried for every call.
  uint32_t mask = 0;
  for (uint32_t i : order_) {
    const GuardProgram& p = *programs[i];
    if (p.static_mask() == 0) continue;
    mask = p.static_mask();
    for (int32_t s = 0; s < static_cast<int32_t>(kMaxSymbols); ++s) {
      if ((mask >> s & 1u) == 0) continue;
      KeySlot slot{0, 0, s};
      if (!p.first_dim_of(s, slot.tensor, slot.dim)) {
        key_.clear();
        mask = 0;
        break;
      }
      key_.push_back(slot);
    }
    break;
  }
  // Specialization order_[i]'s key values are keys[i * width, +width) when
  // keyed[i]. Flat arrays keep this one-off work small in code.
  const size_t width = key_.size();
  const size_t n = order_.size();
  std::vector<int64_t> keys(n * width);
  std::vector<uint8_t> keyed(n, 0);
  size_t keyed_count = 0;
  for (size_t i = 0; i < n && mask != 0; ++i) {
    const GuardProgram& p = *programs[order_[i]];
    if (p.static_mask() != mask) continue;
    bool checked_there = true;
    for (size_t k = 0; k < width; ++k) {
      checked_there &= p.checks_dim(key_[k].symbol, key_[k].tensor, key_[k].dim);
      keys[i * width + k] = p.static_value(static_cast<size_t>(key_[k].symbol));
    }
    keyed[i] = checked_there;
    keyed_count += checked_there;
  }
  auto same_key = [&](size_t i, size_t j) {
    return std::equal(&keys[i * width], &keys[i * width] + width, &keys[j * width]);
  };
  for (size_t i = 0; i < n; ++i) {
    if (!keyed[i]) lists_.push_back(order_[i]);
  }
  unkeyed_count_ = static_cast<uint32_t>(lists_.size());
  if (keyed_count == 0) {
    key_.clear();
    return;
  }
  size_t size = 2;
  while (size < 2 * keyed_count) size *= 2;
  buckets_.assign(size, Bucket{});
  for (size_t i = 0; i < n; ++i) {
    if (!keyed[i]) continue;
    bool seen = false;  // an earlier specialization has this key: its entry lists this one
    for (size_t j = 0; j < i && !seen; ++j) seen = keyed[j] && same_key(i, j);
    if (seen) continue;
    ++keyed_values_;
    Bucket b;
    b.key = static_cast<uint32_t>(keys_.size());
    keys_.insert(keys_.end(), &keys[i * width], &keys[i * width] + width);
    b.list = static_cast<uint32_t>(lists_.size());
    for (size_t j = 0; j < n; ++j) {
      if (!keyed[j] || same_key(i, j)) lists_.push_back(order_[j]);
    }
    b.count = static_cast<uint32_t>(lists_.size()) - b.list;
    uint64_t h = hash(&keys[i * width]) & (size - 1);
    while (buckets_[h].count != 0) h = (h + 1) & (size - 1);
    buckets_[h] = b;
  }
}

uint64_t SelectionTable::hash(const int64_t* values) const noexcept {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  for (size_t k = 0; k < key_.size(); ++k) {
    h = (h ^ static_cast<uint64_t>(values[k])) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  return h;
}

std::span<const uint32_t> SelectionTable::candidates(
    const DLTensor* const* tensors) const noexcept {
  const std::span<const uint32_t> unkeyed(lists_.data() + unkeyed_begin_, unkeyed_count_);
  if (buckets_.empty()) return unkeyed;
  int64_t values[kMaxSymbols];
  for (size_t k = 0; k < key_.size(); ++k) {
    const DLTensor* t = tensors[key_[k].tensor];
    // Not even the key dim is there: every candidate decides (and fails).
    if (t == nullptr || key_[k].dim >= t->ndim || t->shape == nullptr) return order_;
    values[k] = t->shape[key_[k].dim];
  }
  const size_t mask = buckets_.size() - 1;
  for (uint64_t h = hash(values) & mask;; h = (h + 1) & mask) {
    const Bucket& b = buckets_[h];
    if (b.count == 0) return unkeyed;
    if (std::equal(values, values + key_.size(), keys_.data() + b.key)) {
      return {lists_.data() + b.list, b.count};
    }
  }
}

std::string SelectionTable::describe(const GraphNames& names) const {
  if (key_.empty()) return "";
  std::string text;
  for (const KeySlot& k : key_) {
    if (!text.empty()) text += ", ";
    text += cat(names.symbols[static_cast<size_t>(k.symbol)], " (", names.tensors[k.tensor],
                ".shape[", k.dim, "])");
  }
  return cat(text, ": ", keyed_values_, keyed_values_ == 1 ? " value" : " values");
}

}  // namespace kiln::detail
