// What the runtime must refuse, and how: bad tensors are a kiln::Error and
// launch nothing; a kernel fault is a kiln::CudaError naming the graph and
// the kernel. Each check prints one line per case and counts it.
#pragma once

#include "gpu_memory.h"

namespace kiln_gpu {

struct Counts {
  int passed = 0;
  int failed = 0;
  void add(bool ok) { ++(ok ? passed : failed); }
};

// Wrong dtype, wrong constant dim, symbol disagreement between tensors; in
// the default stance (any kiln::Error) and in fail_on_recompile
// (kiln::RecompileError). The output must keep its poison.
void check_guard_misses(Memory& memory, Counts& counts);

// Tensors on a CUDA ordinal past the last device: a kiln::Error naming it.
void check_missing_device(Memory& memory, int device_count, Counts& counts);

// Inputs on one device, the output on another (needs two devices).
void check_mixed_devices(Memory& first, Memory& second, Counts& counts);

// Runs with OpenOptions::cuda_synchronize on a bogus device pointer; the
// fault must come back as a kiln::CudaError. Returns the exit status. The
// fault poisons the CUDA context, so this is a process of its own (--fault).
int run_fault_check(int device);

}  // namespace kiln_gpu
