#include "kiln/jit.h"

#include <atomic>

namespace kiln {
namespace {
std::atomic<JitCompiler*> registered_jit{nullptr};
}

void set_jit_compiler(JitCompiler* compiler) noexcept {
  registered_jit.store(compiler, std::memory_order_release);
}

JitCompiler* jit_compiler() noexcept { return registered_jit.load(std::memory_order_acquire); }

}  // namespace kiln
