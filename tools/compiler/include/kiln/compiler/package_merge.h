// Folds delta packages into a base package (`kiln merge`): a delta is an
// ordinary .kiln package holding, for graphs of the base, specializations
// the base lacks (what the fallback JIT compiled, or another build's hot
// values). The result runs those shapes precompiled.
//
// Rules (docs/package-format.md, "Merging"):
// - Every delta graph must be a base graph of the same name with the same
//   structure hash, symbols (name, range, divisibility; hot values may
//   differ), inputs, outputs and IR; else MergeError naming what differs.
// - Targets match by name. A delta target the base lacks is appended only
//   where the runtime's target choice cannot hide the base's
//   specializations behind it: a CPU level below every CPU level of the
//   base, or a CUDA target when the base has none. Else MergeError.
// - A delta specialization whose key the graph already has (from the base or
//   an earlier delta) is skipped, so merging twice changes nothing.
// - A delta specialization with every symbol static goes before the graph's
//   specializations of its target; one with a dynamic symbol goes after the
//   last fully static one of its target (before the first of its target when
//   there is none). Each keeps its order within the delta.
// - Only the kernels and blobs the added specializations use are copied;
//   kernel names must stay unique (MergeError otherwise).
// - The base's provenance is kept; each delta that added something appends
//   its compilers and flags not already listed, and a "merge: ..." flag.
// The output is deterministic and passes the runtime's verification.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/error.h"
#include "kiln/support/crypto.h"

namespace kiln::compiler {

// A delta that does not fit the base. what() is
// "kiln: merge: delta 'D': graph 'G': SUBJECT: expected E, got A" (without
// the graph part when the conflict is not one graph's), plus a hint when
// there is one. Expected is the base's side, actual the delta's.
// ErrorCode::invalid_argument.
class MergeError : public Error {
 public:
  MergeError(std::string delta, std::string graph, std::string subject, std::string expected,
             std::string actual, std::string_view hint = {});
  const std::string& delta() const noexcept { return delta_; }
  const std::string& graph() const noexcept { return graph_; }
  const std::string& subject() const noexcept { return subject_; }
  const std::string& expected() const noexcept { return expected_; }
  const std::string& actual() const noexcept { return actual_; }

 private:
  std::string delta_, graph_, subject_, expected_, actual_;
};

struct MergeSummary {
  size_t deltas = 0;
  size_t graphs = 0;           // graphs in the merged package
  size_t graphs_extended = 0;  // of those, graphs that gained a specialization
  size_t specializations_added = 0;
  size_t specializations_skipped = 0;  // their key was already in the package
  size_t targets_added = 0;
  size_t kernels_added = 0;
  size_t blobs = 0;  // blobs in the merged package
  size_t blobs_added = 0;
  uint64_t package_bytes = 0;
  std::string signer_key_id;  // the key the output is signed with; empty: unsigned
};

struct MergeResult {
  std::vector<uint8_t> package;
  MergeSummary summary;
};

// Deltas are applied in order; errors name them '#1', '#2', ...
// Throws MergeError for a delta that does not fit, and the reader's
// PackageError (its code kept, the message naming the package) for bytes
// that are not a valid package, blobs included.
MergeResult merge_packages(std::span<const std::byte> base,
                           std::span<const std::span<const std::byte>> deltas);

// merge_packages() on files, written to `out` atomically (a temp file in
// its directory, then rename; `out` may be the base). Errors name the files;
// one that cannot be read is Error(io). The merged package is new bytes, so
// no input's signature carries over: with `sign_key` it is signed with that
// key (kiln/compiler/package_signing.h), else it is unsigned.
MergeSummary merge_package_files(const std::filesystem::path& base,
                                 std::span<const std::filesystem::path> deltas,
                                 const std::filesystem::path& out,
                                 const support::Ed25519SecretKey* sign_key = nullptr);

}  // namespace kiln::compiler
