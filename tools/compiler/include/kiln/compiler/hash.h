// Structure hash and specialization key (DESIGN.md, data flow step 2). Each
// key component is hashed alone so that a miss can say which one changed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kiln/compiler/ir.h"

namespace kiln::compiler {

struct Hash128 {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const Hash128&, const Hash128&) = default;
  std::string hex() const;  // 32 hex digits, hi first
};

Hash128 hash_bytes(const void* data, size_t size);
Hash128 hash_string(std::string_view s);

struct KeyComponents {
  Hash128 structure;  // ops, edges, constants; names, dtypes and shapes erased
  Hash128 dtypes;     // every node's dtype
  // every node's shape, each symbol's range and divisibility (not its hot
  // values), and the specialization's static values
  Hash128 shapes;
  Hash128 target;    // "cpu:x86-64-v3"
  Hash128 options;   // codegen options
  Hash128 compiler;  // Kiln version, codegen version, C++/CUDA compiler identity
  Hash128 runtime;   // package format and CPU ABI versions
  Hash128 tag;       // user tag
};

struct KeyInputs {
  std::string target;
  std::string options;
  std::string compiler_identity;
  std::string tag;
  ir::SymbolValues static_values;  // -1 = dynamic
};

// Both operate on the canonical form (they canonicalize first).
Hash128 structure_hash(const ir::Graph& g);
KeyComponents key_components(const ir::Graph& g, const KeyInputs& inputs);
Hash128 combine_key(const KeyComponents& c);

}  // namespace kiln::compiler
