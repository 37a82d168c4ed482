// The calling convention between generated CPU kernels and the runtime. The
// generated sources include nothing, so the codegen repeats this struct
// verbatim; a test compares the two.
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_CPU_ABI_VERSION 1

typedef struct KilnCpuKernelArgs {
  /* Base pointers, in KernelLaunch.buffers order, already offset by the
   * DLTensor's byte_offset. */
  void* const* buffers;
  /* One value per graph symbol, bound by the guards. */
  const int64_t* symbols;
} KilnCpuKernelArgs;

/* Computes work items [begin, end) of one launch. Called concurrently from
 * several threads on disjoint ranges. */
typedef void (*KilnCpuKernelFn)(const KilnCpuKernelArgs* args, int64_t begin, int64_t end);

/* Every CPU shared object exports `int kiln_cpu_abi_version(void)`. */
typedef int (*KilnCpuAbiVersionFn)(void);

#ifdef __cplusplus
}
#endif
