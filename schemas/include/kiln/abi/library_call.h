// Launches that call a vendor library (KernelLaunch.library_call) instead of
// a generated kernel. Shared by the compiler, which writes them, and the
// runtime, which runs them.
#pragma once

#include <cstdint>

namespace kiln {

// KernelLaunch.kernel of a library call. Not a valid kernel index, so a
// reader from before library_call refuses the plan instead of launching
// kernel 0xFFFFFFFF's neighbour.
inline constexpr uint32_t kNoKernel = 0xFFFFFFFFu;

}  // namespace kiln
