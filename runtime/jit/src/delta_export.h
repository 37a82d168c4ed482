// Package::export_compiled's half in the JIT: what the JIT compiled (or
// loaded) for one package, written as a delta package for `kiln merge`.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cpu_specialization.h"
#include "cuda_specialization.h"
#include "kiln/abi/kiln_package_generated.h"

namespace kiln::jit::detail {

// A specialization the JIT served: one of the two is set.
struct ServedSpecialization {
  std::shared_ptr<const CpuSpecialization> cpu;
  std::shared_ptr<const CudaSpecialization> cuda;

  std::shared_ptr<const JitSpecialization> specialization() const {
    if (cpu) return cpu;
    return cuda;
  }
};

// Writes `served` as a delta package at `path`: the graph entries of `base`
// (signature, structure hash, IR) holding only those specializations, with
// their targets, kernels and blobs (a shared object per CPU specialization,
// a cubin per CUDA kernel); one copy of each key. `compiler_name` goes into
// the provenance. Returns how many specializations it wrote. Throws Error(io)
// when the file cannot be written.
size_t write_delta_package(const fb::Manifest& base,
                           const std::vector<ServedSpecialization>& served,
                           const std::filesystem::path& path, const std::string& compiler_name);

}  // namespace kiln::jit::detail
