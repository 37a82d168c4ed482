// The calling convention between generated CUDA kernels and the runtime.
//
// Every generated kernel is `extern "C" __global__` and takes, in order:
//   1. one pointer per KernelLaunch.buffers entry, already offset by the
//      DLTensor's byte_offset (inputs `const T* __restrict__`, outputs and
//      temps `T* __restrict__`);
//   2. one `int64_t` per graph symbol, in GraphEntry.symbols order, bound by
//      the guards (a static specialization's kernels ignore theirs).
// The runtime passes cuLaunchKernel a `void*` array of the addresses of those
// values; grid, block and dynamic shared memory come from the KernelLaunch.
#pragma once

#define KILN_CUDA_ABI_VERSION 1

/* Block and grid dimensions a KernelLaunch carries: x, y, z. */
#define KILN_CUDA_LAUNCH_DIMS 3
