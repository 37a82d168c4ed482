#include "cpu_specialization.h"

#include <algorithm>
#include <new>

#include "call_binding.h"
#include "kiln/jit_launchers.h"

namespace kiln::jit::detail {
namespace {

struct AlignedDelete {
  void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{64}); }
};

}  // namespace

void CpuSpecialization::run(const JitCall& call) const {
  const ir::SymbolValues values(call.symbols, call.symbols + symbol_count);
  check_work_items(plan, call, values);
  std::vector<void*> buffers(plan.buffers.size(), nullptr);
  std::vector<std::unique_ptr<std::byte[], AlignedDelete>> temps;
  for (size_t b = 0; b < plan.buffers.size(); ++b) {
    const compiler::PlanBuffer& pb = plan.buffers[b];
    if (pb.role == compiler::BufferRole::temp) {
      const size_t bytes = temp_bytes(pb, values);
      temps.emplace_back(static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{64})));
      buffers[b] = temps.back().get();
      continue;
    }
    const DLTensor& t = plan_tensor(pb, call);
    buffers[b] = static_cast<std::byte*>(t.data) + t.byte_offset;
  }
  std::vector<void*> arguments;
  for (const compiler::CpuLaunch& launch : plan.launches) {
    arguments.clear();
    for (uint32_t b : launch.buffers) arguments.push_back(buffers[b]);
    const KilnCpuKernelArgs args{arguments.data(), values.data()};
    const int64_t work = launch.work_items.evaluate(values);
    const int64_t cost = launch.item_cost.evaluate(values);
    const KilnCpuKernelFn fn = kernels[launch.kernel];
    if (call.cpu != nullptr) {
      call.cpu->launch(fn, args, work, cost);
    } else if (work > 0) {
      fn(&args, 0, work);
    }
  }
}

}  // namespace kiln::jit::detail
