#include "cpu_launcher.h"

#include <algorithm>
#include <thread>

#include "cpu_features.h"
#include "kiln/error.h"
#include "text.h"

namespace kiln::detail {
namespace {

struct ChunkedLaunch {
  KilnCpuKernelFn fn;
  const KilnCpuKernelArgs* args;
  int64_t work_items;
  int64_t chunk_items;
};

void run_chunk(void* context, int64_t chunk) {
  const auto& launch = *static_cast<const ChunkedLaunch*>(context);
  const int64_t begin = chunk * launch.chunk_items;
  const int64_t end = std::min(launch.work_items, begin + launch.chunk_items);
  launch.fn(launch.args, begin, end);
}

}  // namespace

CpuLauncher::CpuLauncher(const PackageReader& reader, int num_threads) : reader_(reader) {
  const auto* targets = reader.manifest().targets();
  const CpuLevel host = host_cpu_level();
  std::optional<CpuLevel> best;
  for (uint32_t t = 0; targets && t < targets->size(); ++t) {
    const fb::Target* target = targets->Get(t);
    if (target->device() != fb::DeviceKind::Cpu) continue;
    if (!cpu_targets_text_.empty()) cpu_targets_text_ += ", ";
    cpu_targets_text_ += target->name()->str();
    auto level = cpu_level_from_arch(target->arch()->string_view());
    if (level && *level <= host && (!best || *level > *best)) {
      best = level;
      target_ = t;
    }
  }
  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  threads_ = num_threads > 0 ? static_cast<unsigned>(num_threads) : hardware;
  modules_.resize(reader.manifest().blobs() ? reader.manifest().blobs()->size() : 0);
}

CpuLauncher::~CpuLauncher() = default;

void CpuLauncher::throw_no_target() const {
  throw Error(ErrorCode::kernel_load_failed,
              cat("kiln: this CPU is ", cpu_level_name(host_cpu_level()),
                  "; none of the package's CPU targets (", cpu_targets_text_, ") runs on it"));
}

KilnCpuKernelFn CpuLauncher::kernel(uint32_t kernel_index) {
  const fb::Kernel* kernel = reader_.manifest().kernels()->Get(kernel_index);
  const uint32_t blob = kernel->blob();
  std::lock_guard lock(modules_mutex_);
  if (!modules_[blob]) {
    const std::string label =
        cat("blob ", blob, " (", reader_.manifest().targets()->Get(kernel->target())->name()->str(),
            ")");
    std::span<const std::byte> image;
    try {
      image = reader_.blob(blob);
    } catch (const UntrustedPackageError&) {
      throw;  // a signed blob changed: a refusal on trust, not a load failure
    } catch (const Error& e) {
      throw Error(ErrorCode::kernel_load_failed,
                  cat("kiln: kernel '", kernel->name()->str(), "': ", e.what()));
    }
    modules_[blob] = std::make_unique<CpuModule>(image, label);
  }
  return modules_[blob]->resolve(kernel->entry()->c_str(), kernel->name()->str());
}

ThreadPool& CpuLauncher::pool() {
  std::call_once(pool_once_, [&] { pool_ = std::make_unique<ThreadPool>(threads_); });
  return *pool_;
}

void CpuLauncher::launch(KilnCpuKernelFn fn, const KilnCpuKernelArgs& args, int64_t work_items,
                         int64_t item_cost) {
  if (work_items <= 0) return;
  const int64_t cost = std::max<int64_t>(item_cost, 1);
  int64_t elements = 0;
  if (__builtin_mul_overflow(work_items, cost, &elements)) elements = INT64_MAX;
  if (threads_ <= 1 || elements < kInlineLaunchElements) {
    fn(&args, 0, work_items);
    return;
  }
  const int64_t chunk_items = std::max<int64_t>(1, kChunkElements / cost);
  const int64_t chunks = work_items / chunk_items + (work_items % chunk_items != 0);
  ChunkedLaunch launch{fn, &args, work_items, chunk_items};
  pool().run(chunks, run_chunk, &launch);
}

}  // namespace kiln::detail
