// The semantic half of package verification: the FlatBuffers verifier says
// the manifest is well-formed; these checks say it is consistent (every
// index in range, every target known, every blob inside the file), so the
// rest of the runtime can index without checking again.
#pragma once

#include <cstdint>
#include <string>

#include "kiln/abi/kiln_package_generated.h"

namespace kiln::detail {

struct FileLayout {
  uint64_t header_size;
  uint64_t manifest_offset;
  uint64_t manifest_size;
  uint64_t file_size;
};

// Symbol values and guards of one specialization of `g` (also a JIT's):
// every index in range. Throws PackageError(package_corrupt) naming `where`.
void validate_specialization_guards(const fb::GraphEntry& g, const fb::Specialization& spec,
                                    const std::string& where);

// Throws PackageError(package_unknown_target or package_corrupt).
void validate_manifest(const fb::Manifest& manifest, const FileLayout& layout);

}  // namespace kiln::detail
