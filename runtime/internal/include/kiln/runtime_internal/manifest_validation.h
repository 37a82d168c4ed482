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

// A launch's library call (KernelLaunch.library_call), in a plan of a
// graph with `symbols` symbols: a Gemm with its table, A and B of one of
// f32, f16, bf16 and D of theirs or f32, an epilogue it knows and a finite
// alpha; A, B, D (and the bias, with a Bias or BiasRelu epilogue) as the
// launch's buffers, each in the plan with the gemm's dtype (D's for the
// bias), D not an input; m, n, k, lda, ldb present and every size well
// formed. Whether the launch may be a library call at all (kNoKernel, a
// CUDA target) is the caller's. Throws PackageError(package_corrupt) naming
// `where`. The JIT checks its cached plans with it too.
void validate_library_call(const fb::KernelLaunch& launch, const fb::LaunchPlan& plan,
                           uint32_t symbols, const std::string& where);

// Throws PackageError(package_unknown_target or package_corrupt).
void validate_manifest(const fb::Manifest& manifest, const FileLayout& layout);

}  // namespace kiln::detail
