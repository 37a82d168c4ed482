#include "cpu_specialization.h"

#include <algorithm>
#include <new>

#include "kiln/jit_launchers.h"

namespace kiln::jit::detail {
namespace {

struct AlignedDelete {
  void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{64}); }
};

}  // namespace

void CpuSpecialization::run(const JitCall& call) const {
  const ir::SymbolValues values(call.symbols, call.symbols + symbol_count);
  std::vector<void*> buffers(plan.buffers.size(), nullptr);
  std::vector<std::unique_ptr<std::byte[], AlignedDelete>> temps;
  for (size_t b = 0; b < plan.buffers.size(); ++b) {
    const compiler::PlanBuffer& pb = plan.buffers[b];
    if (pb.role == compiler::BufferRole::temp) {
      const int64_t numel = pb.numel.evaluate(values);
      const size_t bytes = static_cast<size_t>(std::max<int64_t>(numel, 1)) *
                           static_cast<size_t>(dtype_size(pb.dtype));
      temps.emplace_back(static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{64})));
      buffers[b] = temps.back().get();
      continue;
    }
    const DLTensor* t =
        pb.role == compiler::BufferRole::input ? call.inputs[pb.index] : call.outputs[pb.index];
    buffers[b] = static_cast<std::byte*>(t->data) + t->byte_offset;
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
