#include "cuda_launcher.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>

#include "cublaslt_gemm.h"
#include "kiln/abi/library_call.h"
#include "kiln/error.h"
#include "kiln/support/env.h"
#include "text.h"

namespace kiln::detail {
namespace {

// Dynamic shared memory a kernel gets without opting in.
constexpr uint32_t kDefaultSharedBytes = 48 * 1024;
constexpr uintptr_t kWorkspaceAlignment = 256;
constexpr size_t kJitLogBytes = 16 * 1024;

// "sm_90" -> 90; nullopt for anything else ("sm_90a" runs on one device
// only, and the runtime does not know it).
std::optional<int> sm_number(std::string_view arch) {
  constexpr std::string_view kPrefix = "sm_";
  if (!arch.starts_with(kPrefix)) return std::nullopt;
  const std::string_view digits = arch.substr(kPrefix.size());
  int number = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (error != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
    return std::nullopt;
  }
  return number;
}

std::string describe(const CudaDeviceInfo& info) {
  return cat("cuda:", info.ordinal, " (", info.name, ", sm_", info.compute_capability, ")");
}

}  // namespace

std::optional<std::pair<uint32_t, bool>> choose_cuda_target(const fb::Manifest& manifest,
                                                            int compute_capability) {
  const auto* targets = manifest.targets();
  const uint32_t count = targets ? targets->size() : 0;
  // A target runs through PTX only when every kernel of it has PTX: a
  // partial one would fail at some later kernel instead of at the choice.
  std::vector<uint32_t> kernels(count, 0);
  std::vector<uint32_t> with_ptx(count, 0);
  if (manifest.kernels()) {
    for (const fb::Kernel* kernel : *manifest.kernels()) {
      if (kernel->target() >= count) continue;
      ++kernels[kernel->target()];
      if (kernel->ptx_blob() >= 0) ++with_ptx[kernel->target()];
    }
  }
  std::optional<std::pair<uint32_t, int>> cubin;  // (target, sm number)
  std::optional<std::pair<uint32_t, int>> ptx;
  for (uint32_t t = 0; t < count; ++t) {
    const fb::Target* target = targets->Get(t);
    if (target->device() != fb::DeviceKind::Cuda || target->arch() == nullptr) continue;
    const std::optional<int> sm = sm_number(target->arch()->string_view());
    if (!sm || *sm > compute_capability) continue;
    // A cubin runs on its own major only; PTX is compiled for any newer one.
    if (*sm / 10 == compute_capability / 10 && (!cubin || *sm > cubin->second)) cubin = {t, *sm};
    if (kernels[t] > 0 && with_ptx[t] == kernels[t] && (!ptx || *sm > ptx->second)) {
      ptx = {t, *sm};
    }
  }
  if (cubin) return std::pair{cubin->first, false};
  if (ptx) return std::pair{ptx->first, true};
  return std::nullopt;
}

struct CudaLauncher::DeviceSlot {
  CudaDeviceInfo info;
  const CudaDriver* driver = nullptr;
  CUdevice device = 0;
  CUcontext context = nullptr;  // the retained primary context; null when no target fits
  std::unique_ptr<std::atomic<void*>[]> functions;  // by kernel; each null until loaded
  std::mutex modules_mutex;
  std::vector<CUmodule> modules;      // by blob, under modules_mutex
  std::vector<CUmodule> jit_modules;  // loaded for the JIT, under modules_mutex
};

CudaLauncher::CudaLauncher(const PackageReader& reader, const OpenOptions& options)
    : reader_(reader),
      allocator_(options.device_allocator ? options.device_allocator : &stream_ordered_allocator()),
      synchronize_(options.cuda_synchronize) {
  if (const auto sync = support::env_value("KILN_CUDA_SYNC")) synchronize_ |= *sync != "0";
  const fb::Manifest& m = reader.manifest();
  if (m.targets()) {
    for (const fb::Target* target : *m.targets()) {
      if (target->device() != fb::DeviceKind::Cuda) continue;
      if (!cuda_targets_text_.empty()) cuda_targets_text_ += ", ";
      cuda_targets_text_ += target->name()->str();
    }
  }
  kernel_count_ = m.kernels() ? m.kernels()->size() : 0;
  if (!package_has_cuda_targets()) return;
  max_shared_bytes_.assign(kernel_count_, 0);
  if (m.graphs() == nullptr) return;
  for (const fb::GraphEntry* graph : *m.graphs()) {
    if (graph->specializations() == nullptr) continue;
    for (const fb::Specialization* spec : *graph->specializations()) {
      if (spec->plan() == nullptr || spec->plan()->launches() == nullptr) continue;
      for (const fb::KernelLaunch* launch : *spec->plan()->launches()) {
        if (launch->kernel() == kNoKernel) continue;  // a library call
        uint32_t& most = max_shared_bytes_[launch->kernel()];
        most = std::max(most, launch->shared_bytes());
      }
    }
  }
}

CudaLauncher::~CudaLauncher() {
  for (size_t ordinal = 0; ordinal < owned_slots_.size(); ++ordinal) {
    const std::unique_ptr<DeviceSlot>& owned = owned_slots_[ordinal];
    if (!owned || owned->context == nullptr) continue;
    const CudaDriver& cu = *owned->driver;
    // Results are ignored: at process exit the driver may already be shut
    // down, and there is nobody to tell.
    if (cu.cuCtxPushCurrent(owned->context) == kCudaSuccess) {
      owned_gemms_[ordinal].reset();
      for (CUmodule module : owned->modules) {
        if (module != nullptr) cu.cuModuleUnload(module);
      }
      for (CUmodule module : owned->jit_modules) cu.cuModuleUnload(module);
      CUcontext popped = nullptr;
      cu.cuCtxPopCurrent(&popped);
    }
    cu.cuDevicePrimaryCtxRelease(owned->device);
  }
}

CudaLauncher::DeviceSlot& CudaLauncher::slot(int ordinal) {
  if (ordinal >= 0 && ordinal < kMaxCudaDevices) {
    if (DeviceSlot* ready = slots_[ordinal].load(std::memory_order_acquire)) return *ready;
  }
  return initialize(ordinal);
}

CudaLauncher::DeviceSlot& CudaLauncher::initialize(int ordinal) {
  const CudaDriver& cu = CudaDriver::get();
  std::lock_guard lock(init_mutex_);
  if (device_count_ < 0) {
    int count = 0;
    const CUresult result = cu.cuDeviceGetCount(&count);
    if (result != kCudaSuccess) {
      throw Error(ErrorCode::cuda_error,
                  cat("kiln: cuDeviceGetCount failed: ", result_text(result)));
    }
    device_count_ = count;
  }
  if (ordinal < 0 || ordinal >= device_count_) {
    throw Error(ErrorCode::invalid_argument,
                cat("kiln: tensor on cuda:", ordinal, " but this machine has ", device_count_,
                    device_count_ == 1 ? " CUDA device" : " CUDA devices"));
  }
  if (ordinal >= kMaxCudaDevices) {
    throw Error(ErrorCode::invalid_argument,
                cat("kiln: tensor on cuda:", ordinal,
                    "; this runtime supports cuda:0 to cuda:", kMaxCudaDevices - 1));
  }
  if (DeviceSlot* ready = slots_[ordinal].load(std::memory_order_acquire)) return *ready;

  auto slot = std::make_unique<DeviceSlot>();
  slot->driver = &cu;
  CudaDeviceInfo& info = slot->info;
  info.ordinal = ordinal;
  auto check = [&](CUresult result, const char* call) {
    if (result != kCudaSuccess) {
      throw Error(ErrorCode::cuda_error, cat("kiln: cannot query cuda:", ordinal, ": ", call,
                                             " failed: ", result_text(result)));
    }
  };
  int major = 0;
  int minor = 0;
  char name[256] = {};
  check(cu.cuDeviceGet(&slot->device, ordinal), "cuDeviceGet");
  check(cu.cuDeviceGetAttribute(&major, kCuDeviceAttributeComputeCapabilityMajor, slot->device),
        "cuDeviceGetAttribute");
  check(cu.cuDeviceGetAttribute(&minor, kCuDeviceAttributeComputeCapabilityMinor, slot->device),
        "cuDeviceGetAttribute");
  check(cu.cuDeviceGetName(name, sizeof name - 1, slot->device), "cuDeviceGetName");
  info.compute_capability = major * 10 + minor;
  info.name = name;
  slot->functions = std::make_unique<std::atomic<void*>[]>(kernel_count_);
  slot->modules.assign(reader_.manifest().blobs() ? reader_.manifest().blobs()->size() : 0,
                       nullptr);
  if (auto choice = choose_cuda_target(reader_.manifest(), info.compute_capability)) {
    info.target = choice->first;
    info.via_ptx = choice->second;
  }
  // Retained even when no target fits: the JIT may compile for the device.
  // Last, so that nothing above can fail with the context retained.
  const CUresult retained = cu.cuDevicePrimaryCtxRetain(&slot->context, slot->device);
  if (retained != kCudaSuccess) {
    throw Error(ErrorCode::cuda_error,
                cat("kiln: cannot use ", describe(info),
                    ": cuDevicePrimaryCtxRetain failed: ", result_text(retained)));
  }
  DeviceSlot* ready = slot.get();
  owned_slots_[ordinal] = std::move(slot);
  slots_[ordinal].store(ready, std::memory_order_release);
  return *ready;
}

const CudaDeviceInfo& CudaLauncher::device(int ordinal) { return slot(ordinal).info; }

void CudaLauncher::throw_no_target(const CudaDeviceInfo& info) const {
  throw Error(
      ErrorCode::kernel_load_failed,
      cat("kiln: cuda:", info.ordinal, " is ", info.name, " (sm_", info.compute_capability, "); ",
          package_has_cuda_targets()
              ? cat("none of the package's CUDA targets (", cuda_targets_text_, ") runs on it")
              : std::string("the package has no CUDA targets")));
}

CudaLauncher::ContextScope::~ContextScope() {
  if (driver_ == nullptr) return;
  CUcontext popped = nullptr;
  driver_->cuCtxPopCurrent(&popped);
}

CudaLauncher::ContextScope CudaLauncher::enter(int ordinal) { return enter(slot(ordinal)); }

CudaLauncher::ContextScope CudaLauncher::enter(const DeviceSlot& slot) {
  const CudaDriver& cu = *slot.driver;
  CUcontext current = nullptr;
  if (cu.cuCtxGetCurrent(&current) == kCudaSuccess && current == slot.context) {
    return ContextScope(nullptr);
  }
  const CUresult result = cu.cuCtxPushCurrent(slot.context);
  if (result != kCudaSuccess) {
    throw Error(ErrorCode::cuda_error,
                cat("kiln: cannot make the primary context of ", describe(slot.info),
                    " current: cuCtxPushCurrent failed: ", result_text(result)));
  }
  return ContextScope(&cu);
}

void* CudaLauncher::function(int ordinal, uint32_t kernel_index) {
  DeviceSlot& s = slot(ordinal);
  if (kernel_index < kernel_count_) {
    if (void* loaded = s.functions[kernel_index].load(std::memory_order_acquire)) return loaded;
  }
  return load_function(s, kernel_index);
}

CUmodule CudaLauncher::load_module(const DeviceSlot& slot, uint32_t blob_index,
                                   const std::string& kernel_name) {
  const fb::Manifest& m = reader_.manifest();
  const fb::Blob* blob = m.blobs()->Get(blob_index);
  const bool is_ptx = blob->kind() == fb::BlobKind::Ptx;
  const std::string label =
      cat("blob ", blob_index, " (", m.targets()->Get(blob->target())->name()->str(),
          is_ptx ? " PTX" : " cubin", ")");
  std::span<const std::byte> bytes;
  try {
    bytes = reader_.blob(blob_index);
  } catch (const UntrustedPackageError&) {
    throw;  // a signed blob changed: a refusal on trust, not a load failure
  } catch (const Error& e) {
    throw Error(ErrorCode::kernel_load_failed, cat("kiln: kernel '", kernel_name, "': ", e.what()));
  }
  // The driver reads PTX up to its NUL.
  std::string ptx_text;
  const void* image = bytes.data();
  if (is_ptx && (bytes.empty() || bytes.back() != std::byte{0})) {
    ptx_text.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    image = ptx_text.c_str();
  }
  return load_image(slot, image, label, kernel_name);
}

CUmodule CudaLauncher::load_image(const DeviceSlot& slot, const void* image,
                                  const std::string& label, std::string_view kernel_name) {
  std::string log(kJitLogBytes, '\0');
  int options[] = {kCuJitErrorLogBuffer, kCuJitErrorLogBufferSizeBytes};
  // The driver takes option values as pointers, sizes included.
  void* size = reinterpret_cast<void*>(log.size() - 1);  // NOLINT(performance-no-int-to-ptr)
  void* values[] = {log.data(), size};
  const CudaDriver& cu = *slot.driver;
  CUmodule module = nullptr;
  const CUresult result = cu.cuModuleLoadDataEx(&module, image, 2, options, values);
  if (result != kCudaSuccess) {
    log.resize(std::strlen(log.c_str()));
    while (!log.empty() && (log.back() == '\n' || log.back() == ' ')) log.pop_back();
    const int driver_major = cu.version / 1000;
    const int driver_minor = cu.version % 1000 / 10;
    throw Error(ErrorCode::kernel_load_failed,
                cat("kiln: kernel '", kernel_name, "': cannot load ", label, " on ",
                    describe(slot.info), ": cuModuleLoadDataEx failed: ", result_text(result),
                    result == kCudaErrorUnsupportedPtxVersion
                        ? cat("; the driver (CUDA ", driver_major, ".", driver_minor,
                              ") is older than the compiler that made this PTX")
                        : std::string(),
                    log.empty() ? std::string() : cat("\n  JIT log: ", log)));
  }
  return module;
}

void* CudaLauncher::load_function(DeviceSlot& slot, uint32_t kernel_index) {
  const fb::Manifest& m = reader_.manifest();
  if (kernel_index >= kernel_count_) {
    throw Error(ErrorCode::internal,
                cat("kiln: kernel index ", kernel_index, " of ", kernel_count_));
  }
  if (!slot.info.target) throw_no_target(slot.info);
  const fb::Kernel* kernel = m.kernels()->Get(kernel_index);
  const std::string kernel_name = kernel->name()->str();
  if (kernel->target() != *slot.info.target) {
    throw Error(ErrorCode::internal,
                cat("kiln: kernel '", kernel_name, "' is for ",
                    m.targets()->Get(kernel->target())->name()->str(), " but ", describe(slot.info),
                    " runs ", m.targets()->Get(*slot.info.target)->name()->str()));
  }
  const int32_t blob =
      slot.info.via_ptx ? kernel->ptx_blob() : static_cast<int32_t>(kernel->blob());
  if (blob < 0) {
    throw Error(ErrorCode::kernel_load_failed,
                cat("kiln: kernel '", kernel_name,
                    "' has no PTX, and no cubin of the package runs on ", describe(slot.info)));
  }

  std::lock_guard lock(slot.modules_mutex);
  std::atomic<void*>& cached = slot.functions[kernel_index];
  if (void* loaded = cached.load(std::memory_order_acquire)) return loaded;
  const ContextScope scope = enter(slot);
  CUmodule& module = slot.modules[static_cast<uint32_t>(blob)];
  if (module == nullptr) module = load_module(slot, static_cast<uint32_t>(blob), kernel_name);
  const CudaDriver& cu = *slot.driver;
  CUfunction function = nullptr;
  const CUresult result = cu.cuModuleGetFunction(&function, module, kernel->entry()->c_str());
  if (result != kCudaSuccess) {
    throw Error(
        ErrorCode::kernel_load_failed,
        cat("kiln: kernel '", kernel_name, "': entry '", kernel->entry()->string_view(),
            "' not found in blob ", blob, " on ", describe(slot.info), ": ", result_text(result)));
  }
  raise_shared_limit(slot, function,
                     max_shared_bytes_.empty() ? 0 : max_shared_bytes_[kernel_index], kernel_name);
  cached.store(function, std::memory_order_release);
  return function;
}

void CudaLauncher::raise_shared_limit(const DeviceSlot& slot, CUfunction function, uint32_t shared,
                                      std::string_view kernel_name) {
  if (shared <= kDefaultSharedBytes) return;
  const CUresult result = slot.driver->cuFuncSetAttribute(
      function, kCuFuncAttributeMaxDynamicSharedSizeBytes, static_cast<int>(shared));
  if (result != kCudaSuccess) {
    throw Error(ErrorCode::kernel_load_failed,
                cat("kiln: kernel '", kernel_name, "' asks for ", shared,
                    " bytes of dynamic shared memory, more than ", describe(slot.info),
                    " gives it: cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES) failed: ",
                    result_text(result)));
  }
}

void* CudaLauncher::load_function(int ordinal, std::span<const std::byte> cubin, const char* entry,
                                  uint32_t max_shared_bytes, std::string_view label) {
  DeviceSlot& s = slot(ordinal);
  std::lock_guard lock(s.modules_mutex);
  const ContextScope scope = enter(s);
  CUmodule module = load_image(s, cubin.data(), std::string(label), entry);
  s.jit_modules.push_back(module);
  const CudaDriver& cu = *s.driver;
  CUfunction function = nullptr;
  const CUresult result = cu.cuModuleGetFunction(&function, module, entry);
  if (result != kCudaSuccess) {
    throw Error(ErrorCode::kernel_load_failed,
                cat("kiln: ", label, ": entry '", entry, "' not found on ", describe(s.info), ": ",
                    result_text(result)));
  }
  raise_shared_limit(s, function, max_shared_bytes, entry);
  return function;
}

void CudaLauncher::launch_kernel(int ordinal, void* function, const uint32_t grid[3],
                                 const uint32_t block[3], uint32_t shared_bytes, void* stream,
                                 void** params, std::string_view graph, std::string_view kernel) {
  LaunchDims dims{};
  for (int d = 0; d < 3; ++d) {
    dims.grid[d] = grid[d];
    dims.block[d] = block[d];
  }
  dims.shared_bytes = shared_bytes;
  launch(ordinal, function, dims, stream, params, graph, kernel);
}

void CudaLauncher::launch(int ordinal, void* function, const LaunchDims& dims, void* stream,
                          void** params, std::string_view graph, std::string_view kernel) {
  if (dims.grid[0] == 0 || dims.grid[1] == 0 || dims.grid[2] == 0) return;
  const CudaDriver& cu = *slot(ordinal).driver;
  const auto cu_stream = static_cast<CUstream>(stream);
  CUresult result = cu.cuLaunchKernel(static_cast<CUfunction>(function), dims.grid[0], dims.grid[1],
                                      dims.grid[2], dims.block[0], dims.block[1], dims.block[2],
                                      dims.shared_bytes, cu_stream, params, nullptr);
  if (result != kCudaSuccess) {
    std::string why;
    if (is_sticky_result(result)) {
      why = synchronize_ ? "; an earlier kernel on this context faulted"
                         : "; an earlier kernel on this context faulted; set KILN_CUDA_SYNC=1 "
                           "to find which";
    } else if (result == kCudaErrorInvalidContext || result == kCudaErrorInvalidHandle) {
      why = cat("; is the stream from another device or context? It must belong to cuda:", ordinal,
                "'s primary context");
    }
    throw CudaError(
        std::string(graph), std::string(kernel), result,
        cat("on cuda:", ordinal, ": cuLaunchKernel failed: ", result_text(result), why));
  }
  if (!synchronize_) return;
  result = cu.cuStreamSynchronize(cu_stream);
  if (result != kCudaSuccess) {
    throw CudaError(
        std::string(graph), std::string(kernel), result,
        cat("on cuda:", ordinal,
            ": the kernel failed (cuStreamSynchronize after its launch): ", result_text(result)));
  }
}

void* CudaLauncher::allocate(int ordinal, size_t bytes, void* stream) {
  if (bytes == 0) return nullptr;
  void* memory = allocator_->allocate(bytes, ordinal, stream);
  if (memory == nullptr || reinterpret_cast<uintptr_t>(memory) % kWorkspaceAlignment != 0) {
    if (memory != nullptr) allocator_->deallocate(memory, bytes, ordinal, stream);
    throw Error(ErrorCode::invalid_argument,
                cat("kiln: the device allocator gave ",
                    memory ? "a pointer not aligned to 256 bytes" : "NULL", " for ", bytes,
                    " bytes on cuda:", ordinal));
  }
  return memory;
}

void CudaLauncher::deallocate(int ordinal, void* ptr, size_t bytes, void* stream) noexcept {
  if (ptr != nullptr) allocator_->deallocate(ptr, bytes, ordinal, stream);
}

}  // namespace kiln::detail
