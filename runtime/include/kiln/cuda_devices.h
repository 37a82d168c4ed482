/// @file
/// Whether this machine has a GPU the runtime can run CUDA tensors on, and
/// if not, why: an application (or a demo) that picks its device says so
/// plainly instead of failing on its first CUDA call.
#pragma once

namespace kiln {

/// The number of CUDA devices the NVIDIA driver reports, at least 1. Loads
/// the driver (libcuda.so.1, or the file $KILN_LIBCUDA names) as the first
/// CUDA call would, once per process; creates no context.
/// @throws Error with ErrorCode::cuda_unavailable when no GPU can be used,
///   saying why, "kiln: no GPU: " then: no CUDA driver (dlopen's reason), a
///   driver that found no device (CUDA_ERROR_NO_DEVICE), or a driver that
///   cannot be used (cuInit's result; too old for Kiln).
int cuda_device_count();

}  // namespace kiln
