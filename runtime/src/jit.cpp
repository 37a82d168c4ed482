#include "kiln/jit.h"

#include <atomic>

#include "kiln/jit_launchers.h"

namespace kiln {
namespace {
std::atomic<JitCompiler*> registered_jit{nullptr};
}

CudaKernelLauncher::CudaKernelLauncher() noexcept {
  static std::atomic<uint64_t> next{1};
  instance_id_ = next.fetch_add(1, std::memory_order_relaxed);
}

size_t JitCompiler::export_compiled(const PackageReader& /*package*/,
                                    const std::filesystem::path& /*path*/) {
  throw Error(ErrorCode::invalid_argument,
              "kiln: export_compiled: the registered JIT compiler cannot export what it compiled");
}

std::optional<size_t> JitCompiler::max_adopted_entries() const { return std::nullopt; }

void set_jit_compiler(JitCompiler* compiler) noexcept {
  registered_jit.store(compiler, std::memory_order_release);
}

JitCompiler* jit_compiler() noexcept { return registered_jit.load(std::memory_order_acquire); }

}  // namespace kiln
