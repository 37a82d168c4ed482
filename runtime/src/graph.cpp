// Graph: argument checks, guard-based selection, miss handling and plan
// execution (CPU thread pool, or CUDA launches on the caller's stream) for
// one graph of a package.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <new>
#include <optional>
#include <shared_mutex>
#include <string>

#include "cpu_features.h"
#include "gemm_operand.h"
#include "gemm_program.h"
#include "guard_program.h"
#include "kiln/jit.h"
#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "log_topics.h"
#include "manifest_validation.h"
#include "package_state.h"
#include "selection_table.h"
#include "size_expr.h"
#include "stance_env.h"
#include "text.h"

namespace kiln {

using detail::cat;

namespace {

constexpr size_t kTempAlignment = 64;
// cuBLASLt's workspace, after the temps in the call's one allocation.
constexpr size_t kGemmWorkspaceAlignment = 256;
static_assert(kGuardKindCount == static_cast<size_t>(fb::GuardKind::MAX) + 1,
              "GraphCounters::misses_by_reason has one slot per guard kind");

struct CompiledBuffer {
  fb::BufferRole role;
  uint32_t index;
  size_t element_size;
  detail::SizeProgram numel;
  bool has_numel;  // the plan declares numel (temps always do)
};

struct CompiledLaunch {
  uint32_t kernel;
  std::vector<uint32_t> buffers;
  detail::SizeProgram work_items;
  detail::SizeProgram item_cost;
  KilnCpuKernelFn fn = nullptr;  // set once, under Graph::Impl::kernels_once
  // CUDA: grid as programs over the symbols, block, dynamic shared memory.
  std::array<detail::SizeProgram, 3> grid;
  std::array<uint32_t, 3> block = {1, 1, 1};
  uint32_t shared_bytes = 0;
  std::string kernel_name;  // for a library call: "launch 1 (gemm)"
  // Set: a library call (kernel is kNoKernel), run through cuBLASLt.
  std::optional<detail::GemmProgram> gemm;
};

struct CompiledSpecialization {
  std::string name;
  uint32_t target;
  bool cuda = false;
  detail::GuardProgram guards;
  std::vector<CompiledBuffer> buffers;
  // Per plan buffer: its tensor (inputs, then outputs), or -1 for a temp.
  std::vector<int32_t> buffer_tensor;
  std::vector<uint32_t> temps;  // the plan buffers that are temps
  std::vector<CompiledLaunch> launches;
  bool has_temps = false;
  bool has_gemm = false;  // a launch is a gemm: the call's workspace holds cuBLASLt's
  // Byte sizes for the overlap check: tensors whose size the guards fix as
  // one expression share a class, computed once per call; -1: read the
  // tensor's own shape.
  std::vector<int16_t> extent_class;
  std::vector<detail::TensorExtent> extents;
};

// A specialization the JIT compiled for this graph: its guards and extents,
// built from the FlatBuffer it hands back; its kernels and plan are the
// JIT's, which runs it.
struct JitEntry {
  std::shared_ptr<const JitSpecialization> jit;
  CompiledSpecialization compiled;
};

// Guards, buffers, extents and (with `with_plan`) launches of one
// specialization. JIT specializations pass with_plan = false: their launches
// are the JIT's own. `kernels` may be null with a plan: a package whose
// plans are library calls only has no kernels (validation refuses a kernel
// launch then).
void build_specialization(CompiledSpecialization& compiled, const fb::Specialization& spec,
                          const detail::GraphNames& names, size_t input_count, bool with_plan,
                          const flatbuffers::Vector<flatbuffers::Offset<fb::Kernel>>* kernels) {
  compiled.name = spec.name()->str();
  compiled.target = spec.target();
  compiled.guards = detail::GuardProgram(spec, names);
  const fb::LaunchPlan* plan = spec.plan();
  if (with_plan && plan != nullptr && plan->buffers()) {
    for (const fb::BufferDecl* decl : *plan->buffers()) {
      compiled.buffers.push_back(
          {decl->role(), decl->index(),
           static_cast<size_t>(dtype_size(static_cast<DType>(decl->dtype()))),
           detail::SizeProgram(decl->numel(), 0),
           decl->numel() != nullptr && decl->numel()->ops() != nullptr &&
               decl->numel()->ops()->size() > 0});
      compiled.has_temps |= decl->role() == fb::BufferRole::Temp;
      switch (decl->role()) {
        case fb::BufferRole::Input:
          compiled.buffer_tensor.push_back(static_cast<int32_t>(decl->index()));
          break;
        case fb::BufferRole::Output:
          compiled.buffer_tensor.push_back(static_cast<int32_t>(input_count + decl->index()));
          break;
        default:
          compiled.temps.push_back(static_cast<uint32_t>(compiled.buffer_tensor.size()));
          compiled.buffer_tensor.push_back(-1);
      }
    }
  }
  for (size_t t = 0; t < names.tensors.size(); ++t) {
    detail::TensorExtent extent;
    int16_t cls = -1;
    if (compiled.guards.extent_of(static_cast<uint16_t>(t), extent)) {
      const auto known = std::find(compiled.extents.begin(), compiled.extents.end(), extent);
      cls = static_cast<int16_t>(known - compiled.extents.begin());
      if (known == compiled.extents.end()) compiled.extents.push_back(extent);
    }
    compiled.extent_class.push_back(cls);
  }
  if (!with_plan || plan == nullptr || !plan->launches()) return;
  for (const fb::KernelLaunch* launch : *plan->launches()) {
    CompiledLaunch l;
    l.kernel = launch->kernel();
    if (const fb::LibraryCall* call = launch->library_call()) {
      // Validation admits Gemm only.
      l.gemm.emplace(*call->gemm());
      l.buffers.assign(launch->buffers()->begin(), launch->buffers()->end());
      l.kernel_name = cat("launch ", compiled.launches.size(), " (gemm)");
      compiled.has_gemm = true;
      compiled.launches.push_back(std::move(l));
      continue;
    }
    if (launch->buffers()) l.buffers.assign(launch->buffers()->begin(), launch->buffers()->end());
    l.work_items = detail::SizeProgram(launch->work_items(), 0);
    l.item_cost = detail::SizeProgram(launch->item_cost(), 1);
    for (uint32_t d = 0; d < 3; ++d) {
      const fb::SizeExpr* g =
          launch->grid() && d < launch->grid()->size() ? launch->grid()->Get(d) : nullptr;
      l.grid[d] = detail::SizeProgram(g, 1);
      if (launch->block() && d < launch->block()->size()) l.block[d] = launch->block()->Get(d);
    }
    l.shared_bytes = launch->shared_bytes();
    if (kernels == nullptr || launch->kernel() >= kernels->size()) {
      throw PackageError(
          ErrorCode::package_corrupt,
          cat("kiln: specialization '", compiled.name, "' launches kernel ", launch->kernel(),
              " of a package with ", kernels ? kernels->size() : 0, " kernels"));
    }
    l.kernel_name = kernels->Get(launch->kernel())->name()->str();
    compiled.launches.push_back(std::move(l));
  }
}

// Temp buffers of the calling thread, grown as needed and kept: concurrent
// calls never share one, and a warm thread allocates nothing.
class Workspace {
 public:
  ~Workspace() { release(); }
  std::byte* reserve(size_t bytes) {
    if (bytes > capacity_) {
      release();
      data_ = static_cast<std::byte*>(::operator new(bytes, std::align_val_t(kTempAlignment)));
      capacity_ = bytes;
    }
    return data_;
  }

 private:
  void release() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t(kTempAlignment));
    data_ = nullptr;
    capacity_ = 0;
  }
  std::byte* data_ = nullptr;
  size_t capacity_ = 0;
};

thread_local Workspace thread_workspace;

// The product of a tensor's (non-negative) dims, or -1 when it overflows.
int64_t element_count(const DLTensor& t) {
  int64_t numel = 1;
  for (int32_t d = 0; d < t.ndim; ++d) {
    if (__builtin_mul_overflow(numel, t.shape[d], &numel)) return -1;
  }
  return numel;
}

size_t round_up(size_t value, size_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// Where a call runs: the CPU, or a CUDA device with its compute capability,
// and the specializations to try there.
struct CallDevice {
  bool cuda = false;
  int ordinal = 0;
  int compute_capability = 0;
  const detail::SelectionTable* table = nullptr;
};

// Temps of a CUDA call, given back to the allocator when the call's
// launches are enqueued (or one of them failed).
class CudaWorkspace {
 public:
  CudaWorkspace(detail::CudaLauncher& launcher, int ordinal, size_t bytes, void* stream)
      : launcher_(launcher), ordinal_(ordinal), bytes_(bytes), stream_(stream) {
    data_ = launcher.allocate(ordinal, bytes, stream);
  }
  ~CudaWorkspace() {
    if (data_ != nullptr) launcher_.deallocate(ordinal_, data_, bytes_, stream_);
  }
  CudaWorkspace(const CudaWorkspace&) = delete;
  CudaWorkspace& operator=(const CudaWorkspace&) = delete;
  std::byte* data() const { return static_cast<std::byte*>(data_); }

 private:
  detail::CudaLauncher& launcher_;
  int ordinal_;
  size_t bytes_;
  void* stream_;
  void* data_ = nullptr;
};

}  // namespace

struct Graph::Impl {
  detail::PackageState* package = nullptr;
  const fb::GraphEntry* entry = nullptr;
  std::string name;
  size_t input_count = 0;
  size_t output_count = 0;
  detail::GraphNames names;
  std::vector<CompiledSpecialization> specializations;
  // Indices of the specializations for the package's chosen CPU target, in
  // selection order, and their table.
  std::vector<uint32_t> cpu_candidates;
  detail::SelectionTable cpu_table;
  bool has_cpu_specializations = false;
  // The package targets this graph is built for (GraphEntry.targets; all
  // when absent), by index, and as text ("cpu:x86-64, cuda:sm_90").
  std::vector<bool> builds_target;
  std::string targets_text;
  // Some package target is left out: errors then name the graph's targets.
  bool restricted = false;
  // The best of the graph's CPU targets this machine runs: the graph's own
  // choice, since GRAPH_TARGETS may leave it only lower levels.
  std::optional<uint32_t> cpu_target;
  std::string cpu_targets_text;
  // By package target: that CUDA target's specializations (none for CPU
  // targets). A device runs the target the launcher chose for it.
  std::vector<detail::SelectionTable> cuda_tables;
  size_t symbol_count = 0;
  // No candidates: a CUDA call on a device no package target runs, handed
  // to the JIT.
  detail::SelectionTable empty_table;

  std::once_flag kernels_once;

  // What the JIT compiled for this graph, in the order it came; checked
  // after the package's own. Entries are never removed, so a reader keeps
  // its pointer after the lock.
  mutable std::shared_mutex jit_mutex;
  std::vector<std::unique_ptr<JitEntry>> jit_entries;
  std::atomic<size_t> jit_entry_count{0};

  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> jit_hits{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> jit_served{0};
  std::array<std::atomic<uint64_t>, kGuardKindCount> misses_by_reason{};

  // The call's tensors, inputs then outputs, after checking their number.
  void gather(std::span<const DLTensor* const> inputs, std::span<const DLTensor* const> outputs,
              const DLTensor** tensors) const;
  // Throws invalid_argument for NULL tensors, bad shapes and NULL data of a
  // non-empty tensor. A call runs it before the guards, unless a pass of
  // the guards implies it (SelectionTable::covers_validation); then only
  // on a miss, or when a tensor that passed has NULL data.
  void validate(const DLTensor* const* tensors) const;
  CallDevice device_of(const DLTensor* const* tensors) const;
  // The chosen specialization, or nullptr on a miss; throws like validate().
  const CompiledSpecialization* select(const DLTensor* const* tensors, int64_t* symbols,
                                       const CallDevice& device) const;
  // A JIT-compiled specialization whose guards pass, or nullptr.
  const JitEntry* select_jit(const DLTensor* const* tensors, int64_t* symbols,
                             const CallDevice& device) const;
  // Keeps what the JIT returned (once, however many threads got it).
  const JitEntry& adopt(std::shared_ptr<const JitSpecialization> jit);
  void run_jit(const JitEntry& entry, std::span<const DLTensor* const> inputs,
               std::span<const DLTensor* const> outputs, const int64_t* symbols,
               const CallDevice& device, void* stream);
  // The miss path under Stance::fallback with a JIT registered.
  void serve_by_jit(JitCompiler& jit, const DLTensor* const* tensors,
                    std::span<const DLTensor* const> inputs,
                    std::span<const DLTensor* const> outputs, const CallDevice& device,
                    void* stream, std::vector<GuardFailure> failures);
  std::vector<GuardFailure> explain_miss(const DLTensor* const* tensors, bool count,
                                         const CallDevice& device);
  // Error(kernel_load_failed): the graph has CPU code, none of it for a
  // level this CPU runs.
  [[noreturn]] void throw_no_cpu_target() const;
  // Error(kernel_load_failed): the device runs `target`, which the graph is
  // not built for.
  [[noreturn]] void throw_not_built_for(const CallDevice& device, uint32_t target) const;
  void resolve_kernels();
  // Generated kernels take their pointers as __restrict: an output that
  // shares memory with another tensor would give a silently wrong answer.
  void check_no_overlap(const CompiledSpecialization& spec, const DLTensor* const* tensors,
                        const int64_t* symbols) const;
  // Inputs and outputs point at the caller's data; returns the
  // size of one workspace holding every temp, and their offsets in it (each
  // size evaluated once).
  size_t place_buffers(const CompiledSpecialization& spec, const DLTensor* const* tensors,
                       const int64_t* symbols, void** buffers, size_t* temp_offsets) const;
  void run(const CompiledSpecialization& spec, const DLTensor* const* tensors,
           const int64_t* symbols);
  // `symbols` is not const: the kernel parameters point into it.
  void run_cuda(const CompiledSpecialization& spec, const DLTensor* const* tensors,
                int64_t* symbols, const CallDevice& device, void* stream);
  // A library call's launch: the gemm evaluated for the call, each operand
  // held to what its buffer holds (gemm_operand_elements).
  void run_gemm(const CompiledSpecialization& spec, const CompiledLaunch& launch,
                const DLTensor* const* tensors, const int64_t* symbols, void* const* buffers,
                void* workspace, size_t workspace_bytes, const CallDevice& device, void* stream);
  // KILN_LOG=recompiles: one stderr line per failed guard of a miss.
  void log_recompile(const std::vector<GuardFailure>& failures) const;
  [[noreturn]] void throw_miss(std::vector<GuardFailure> failures) const;
};

std::unique_ptr<Graph> detail::GraphFactory::make(PackageState& package,
                                                  const fb::GraphEntry& entry) {
  auto impl = std::make_unique<Graph::Impl>();
  impl->package = &package;
  impl->entry = &entry;
  impl->name = entry.name()->str();
  impl->input_count = entry.inputs() ? entry.inputs()->size() : 0;
  impl->output_count = entry.outputs() ? entry.outputs()->size() : 0;
  for (size_t t = 0; t < impl->input_count; ++t) {
    impl->names.tensors.push_back(entry.inputs()->Get(t)->name()->str());
  }
  for (size_t t = 0; t < impl->output_count; ++t) {
    impl->names.tensors.push_back(entry.outputs()->Get(t)->name()->str());
  }
  if (entry.symbols()) {
    for (const fb::Symbol* s : *entry.symbols()) impl->names.symbols.push_back(s->name()->str());
  }
  impl->symbol_count = impl->names.symbols.size();
  const auto* targets = package.reader.manifest().targets();
  // A manifest may list no targets (a package of IR only, for the JIT).
  std::vector<std::vector<uint32_t>> cuda_candidates(targets ? targets->size() : 0);

  const uint32_t target_count = targets ? targets->size() : 0;
  impl->builds_target.assign(target_count, entry.targets() == nullptr);
  if (entry.targets()) {
    for (uint32_t t : *entry.targets()) impl->builds_target[t] = true;  // validated < count
  }
  const detail::CpuLevel host = detail::host_cpu_level();
  std::optional<detail::CpuLevel> best_level;
  for (uint32_t t = 0; t < target_count; ++t) {
    if (!impl->builds_target[t]) {
      impl->restricted = true;
      continue;
    }
    const fb::Target* target = targets->Get(t);
    impl->targets_text += cat(impl->targets_text.empty() ? "" : ", ", target->name()->str());
    if (target->device() != fb::DeviceKind::Cpu) continue;
    impl->cpu_targets_text +=
        cat(impl->cpu_targets_text.empty() ? "" : ", ", target->name()->str());
    const std::optional<detail::CpuLevel> level =
        detail::cpu_level_from_arch(target->arch()->string_view());
    if (level && *level <= host && (!best_level || *level > *best_level)) {
      best_level = level;
      impl->cpu_target = t;
    }
  }
  // An unrestricted graph runs the package's CPU target, as it always has.
  if (!impl->restricted) impl->cpu_target = package.cpu.target();
  const std::optional<uint32_t> cpu_target = impl->cpu_target;
  const uint32_t count = entry.specializations() ? entry.specializations()->size() : 0;
  // Built in place: the elements never move (and no move constructor is
  // compiled into the runtime).
  impl->specializations = std::vector<CompiledSpecialization>(count);
  for (uint32_t s = 0; s < count; ++s) {
    const fb::Specialization& spec = *entry.specializations()->Get(s);
    CompiledSpecialization& compiled = impl->specializations[s];
    build_specialization(compiled, spec, impl->names, impl->input_count, true,
                         package.reader.manifest().kernels());
    const bool is_cpu = targets->Get(spec.target())->device() == fb::DeviceKind::Cpu;
    compiled.cuda = !is_cpu;
    impl->has_cpu_specializations |= is_cpu;
    if (cpu_target && spec.target() == *cpu_target) impl->cpu_candidates.push_back(s);
    if (!is_cpu) cuda_candidates[spec.target()].push_back(s);
  }
  std::vector<const detail::GuardProgram*> programs;
  for (const CompiledSpecialization& spec : impl->specializations) programs.push_back(&spec.guards);
  const size_t tensor_count = impl->input_count + impl->output_count;
  impl->cpu_table = detail::SelectionTable(impl->cpu_candidates, programs, tensor_count);
  for (std::vector<uint32_t>& order : cuda_candidates) {
    impl->cuda_tables.emplace_back(std::move(order), programs, tensor_count);
  }
  return std::unique_ptr<Graph>(new Graph(std::move(impl)));
}

void Graph::Impl::gather(std::span<const DLTensor* const> inputs,
                         std::span<const DLTensor* const> outputs, const DLTensor** tensors) const {
  if (inputs.size() != input_count || outputs.size() != output_count) {
    throw Error(ErrorCode::invalid_argument,
                cat("kiln: graph '", name, "' takes ", input_count, " inputs and ", output_count,
                    " outputs, got ", inputs.size(), " and ", outputs.size()));
  }
  std::copy(inputs.begin(), inputs.end(), tensors);
  std::copy(outputs.begin(), outputs.end(), tensors + input_count);
}

void Graph::Impl::validate(const DLTensor* const* tensors) const {
  for (size_t t = 0; t < input_count + output_count; ++t) {
    const DLTensor* tensor = tensors[t];
    const std::string& tensor_name = names.tensors[t];
    if (tensor == nullptr) {
      throw Error(ErrorCode::invalid_argument,
                  cat("kiln: graph '", name, "': tensor '", tensor_name, "' is NULL"));
    }
    if (tensor->ndim < 0 || (tensor->ndim > 0 && tensor->shape == nullptr)) {
      throw Error(ErrorCode::invalid_argument,
                  cat("kiln: graph '", name, "': tensor '", tensor_name, "' has ndim ",
                      tensor->ndim, tensor->ndim > 0 ? " and a NULL shape" : ""));
    }
    // The element count is needed only for NULL data (allowed when empty);
    // its overflow is checked where a call computes byte ranges.
    for (int32_t d = 0; d < tensor->ndim; ++d) {
      if (tensor->shape[d] < 0) {
        throw Error(ErrorCode::invalid_argument,
                    cat("kiln: graph '", name, "': tensor '", tensor_name, "' has shape[", d,
                        "] = ", tensor->shape[d], " (negative)"));
      }
    }
    if (tensor->data == nullptr) {
      const int64_t numel = element_count(*tensor);
      if (numel != 0) {
        throw Error(ErrorCode::invalid_argument,
                    cat("kiln: graph '", name, "': tensor '", tensor_name, "' has NULL data but ",
                        numel < 0 ? std::string("overflowing") : cat(numel), " elements"));
      }
    }
  }
}

void Graph::Impl::check_no_overlap(const CompiledSpecialization& spec,
                                   const DLTensor* const* tensors, const int64_t* symbols) const {
  const size_t count = input_count + output_count;
  auto too_large = [&](size_t t) {
    return Error(ErrorCode::invalid_argument,
                 cat("kiln: graph '", name, "': tensor '", names.tensors[t],
                     "' has more elements than memory can hold"));
  };
  // Each class's bytes once; -1 where it overflows (reported for the first
  // tensor of the class, as if it were computed per tensor).
  int64_t class_bytes[kMaxTensors];
  for (size_t c = 0; c < spec.extents.size(); ++c) {
    const detail::TensorExtent& e = spec.extents[c];
    int64_t bytes = e.bytes_factor;
    for (uint8_t i = 0; i < e.symbol_count && bytes >= 0; ++i) {
      if (__builtin_mul_overflow(bytes, symbols[e.symbols[i]], &bytes)) bytes = -1;
    }
    class_bytes[c] = bytes;
  }
  uintptr_t begins[kMaxTensors];
  uintptr_t ends[kMaxTensors];
  for (size_t t = 0; t < count; ++t) {
    const DLTensor& tensor = *tensors[t];
    const uintptr_t begin = reinterpret_cast<uintptr_t>(tensor.data) + tensor.byte_offset;
    int64_t bytes = 0;
    if (const int16_t c = spec.extent_class[t]; c >= 0) {
      bytes = class_bytes[c];
    } else {
      const int64_t numel = element_count(tensor);
      const auto element = static_cast<int64_t>((tensor.dtype.bits * tensor.dtype.lanes + 7u) / 8u);
      if (numel < 0 || __builtin_mul_overflow(numel, element, &bytes)) bytes = -1;
    }
    if (bytes < 0) throw too_large(t);
    begins[t] = begin;
    ends[t] = begin + static_cast<uintptr_t>(bytes);
  }
  for (size_t o = input_count; o < count; ++o) {
    const uintptr_t begin = begins[o];
    const uintptr_t end = ends[o];
    if (begin == end) continue;
    for (size_t t = 0; t < count; ++t) {
      if (!(begins[t] < end && begin < ends[t]) || t == o) continue;
      throw Error(ErrorCode::invalid_argument,
                  cat("kiln: graph '", name, "': output '", names.tensors[o], "' overlaps ",
                      t < input_count ? "input" : "output", " '", names.tensors[t],
                      "' in memory; Kiln kernels do not run in place"));
    }
  }
}

CallDevice Graph::Impl::device_of(const DLTensor* const* tensors) const {
  // The first input (or output) says where the call runs; a tensor elsewhere
  // then fails its Device guard, except another CUDA ordinal, which no guard
  // sees.
  const DLTensor* lead = tensors[0];
  if (lead == nullptr) {
    validate(tensors);  // throws for the NULL tensor
    throw Error(ErrorCode::internal, cat("kiln: graph '", name, "': a NULL tensor passed"));
  }
  const DLDevice first = lead->device;
  if (first.device_type != kDLCUDA) {
    if (has_cpu_specializations && !cpu_target) throw_no_cpu_target();
    return {false, 0, 0, &cpu_table};
  }
  // With a JIT to compile for the device, a call no package target runs is
  // a miss for it; else, in a package without CUDA code, the CPU
  // specializations' Device guards say why the call cannot run.
  const bool jit_may_serve = package->stance.load(std::memory_order_relaxed) == Stance::fallback &&
                             jit_compiler() != nullptr;
  if (!package->cuda.package_has_cuda_targets() && !jit_may_serve) {
    return {false, 0, 0, &cpu_table};
  }
  for (size_t t = 1; t < input_count + output_count; ++t) {
    if (tensors[t] == nullptr) validate(tensors);
    const DLDevice d = tensors[t]->device;
    if (d.device_type == kDLCUDA && d.device_id != first.device_id) {
      throw Error(ErrorCode::invalid_argument,
                  cat("kiln: graph '", name, "': tensor '", names.tensors[t],
                      "' is on cuda:", d.device_id, " but '", names.tensors[0],
                      "' is on cuda:", first.device_id, "; a call runs on one device"));
    }
  }
  const detail::CudaDeviceInfo& info = package->cuda.device(first.device_id);
  if (!info.target) {
    if (!jit_may_serve) package->cuda.throw_no_target(info);
    return {true, first.device_id, info.compute_capability, &empty_table};
  }
  // The device runs the package's target for it (the launcher's choice); a
  // graph left off that target is, on this device, like a package without
  // one: the JIT's, or an error.
  if (!builds_target[*info.target]) {
    const CallDevice device{true, first.device_id, info.compute_capability, &empty_table};
    if (!jit_may_serve) throw_not_built_for(device, *info.target);
    return device;
  }
  return {true, first.device_id, info.compute_capability, &cuda_tables[*info.target]};
}

void Graph::Impl::throw_no_cpu_target() const {
  if (!restricted) package->cpu.throw_no_target();
  throw Error(ErrorCode::kernel_load_failed,
              cat("kiln: graph '", name, "' is built for ", targets_text,
                  " (GRAPH_TARGETS or kiln::graph_targets); this CPU is ",
                  detail::cpu_level_name(detail::host_cpu_level()),
                  ", which none of its CPU targets (", cpu_targets_text, ") runs on"));
}

void Graph::Impl::throw_not_built_for(const CallDevice& device, uint32_t target) const {
  throw Error(
      ErrorCode::kernel_load_failed,
      cat("kiln: graph '", name, "' is built for ", targets_text,
          " (GRAPH_TARGETS or kiln::graph_targets); cuda:", device.ordinal, " (compute capability ",
          device.compute_capability / 10, ".", device.compute_capability % 10,
          ") runs the package's ", package->reader.manifest().targets()->Get(target)->name()->str(),
          ", which the graph is not built for"));
}

const CompiledSpecialization* Graph::Impl::select(const DLTensor* const* tensors, int64_t* symbols,
                                                  const CallDevice& device) const {
  const detail::SelectionTable& table = *device.table;
  if (!table.covers_validation()) validate(tensors);
  bool null_data = false;
  for (uint32_t index : table.candidates(tensors)) {
    const CompiledSpecialization& spec = specializations[index];
    if (spec.guards.passes(tensors, symbols, device.compute_capability, null_data)) {
      if (null_data) validate(tensors);
      return &spec;
    }
  }
  // A miss on invalid arguments is an invalid argument.
  validate(tensors);
  return nullptr;
}

std::vector<GuardFailure> Graph::Impl::explain_miss(const DLTensor* const* tensors, bool count,
                                                    const CallDevice& device) {
  std::vector<GuardFailure> failures;
  std::vector<detail::FailedGuard> closest;
  bool have_closest = false;
  for (uint32_t index : device.table->all()) {
    const CompiledSpecialization& spec = specializations[index];
    std::vector<detail::FailedGuard> failed;
    spec.guards.collect_failures(tensors, spec.name, names, failed, device.compute_capability);
    if (!have_closest || failed.size() < closest.size()) {
      closest = failed;
      have_closest = true;
    }
    for (detail::FailedGuard& f : failed) failures.push_back(std::move(f.failure));
  }
  // No specialization to fail a guard: the graph may be built for no
  // target of this device; say which ones it has.
  if (device.table->all().empty() && restricted) {
    failures.push_back({"(every specialization)", "target",
                        cat("a device of one of the graph's targets (", targets_text, ")"),
                        device.cuda ? cat("cuda:", device.ordinal) : std::string("cpu")});
  }
  if (count) {
    bool seen[kGuardKindCount] = {};
    for (const detail::FailedGuard& f : closest) {
      const auto kind = static_cast<size_t>(f.kind);
      if (kind < kGuardKindCount && !seen[kind]) {
        seen[kind] = true;
        misses_by_reason[kind].fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  return failures;
}

void Graph::Impl::log_recompile(const std::vector<GuardFailure>& failures) const {
  // One write per line, so lines of concurrent misses do not interleave.
  const std::string_view stance =
      detail::stance_name(package->stance.load(std::memory_order_relaxed));
  if (failures.empty()) {
    std::fprintf(stderr, "%s",
                 cat("kiln: recompile: graph '", name, "' (stance ", stance,
                     "): no specialization for this device\n")
                     .c_str());
  }
  for (const GuardFailure& f : failures) {
    std::fprintf(stderr, "%s",
                 cat("kiln: recompile: graph '", name, "' (stance ", stance, "): specialization '",
                     f.specialization, "': ", f.subject, " expected ", f.expected, ", actual ",
                     f.actual, "\n")
                     .c_str());
  }
}

void Graph::Impl::throw_miss(std::vector<GuardFailure> failures) const {
  if (package->stance.load(std::memory_order_relaxed) == Stance::fail_on_recompile) {
    throw RecompileError(name, std::move(failures));
  }
  throw NoSpecializationError(name, std::move(failures));
}

void Graph::Impl::resolve_kernels() {
  std::call_once(kernels_once, [&] {
    for (uint32_t index : cpu_candidates) {
      for (CompiledLaunch& launch : specializations[index].launches) {
        launch.fn = package->cpu.kernel(launch.kernel);
      }
    }
  });
}

size_t Graph::Impl::place_buffers(const CompiledSpecialization& spec,
                                  const DLTensor* const* tensors, const int64_t* symbols,
                                  void** buffers, size_t* temp_offsets) const {
  for (size_t i = 0; i < spec.buffer_tensor.size(); ++i) {
    const int32_t tensor = spec.buffer_tensor[i];
    if (tensor >= 0) {
      buffers[i] = static_cast<std::byte*>(tensors[tensor]->data) + tensors[tensor]->byte_offset;
    }
  }
  size_t temp_total = 0;
  for (uint32_t i : spec.temps) {
    const CompiledBuffer& b = spec.buffers[i];
    const int64_t numel = b.numel.evaluate(symbols, "temp numel");
    const size_t offset = round_up(temp_total, kTempAlignment);
    size_t bytes = 0;
    if (numel < 0 || __builtin_mul_overflow(static_cast<size_t>(numel), b.element_size, &bytes) ||
        __builtin_add_overflow(offset, bytes, &temp_total)) {
      throw Error(ErrorCode::invalid_argument, cat("kiln: graph '", name, "': temp buffer of ",
                                                   numel, " elements is negative or too large"));
    }
    temp_offsets[i] = offset;
  }
  return temp_total;
}

void Graph::Impl::run(const CompiledSpecialization& spec, const DLTensor* const* tensors,
                      const int64_t* symbols) {
  resolve_kernels();
  void* buffers[kMaxPlanBuffers];
  size_t temp_offsets[kMaxPlanBuffers];
  const size_t temp_total = place_buffers(spec, tensors, symbols, buffers, temp_offsets);
  if (spec.has_temps) {
    std::byte* temp_base = thread_workspace.reserve(temp_total);
    for (uint32_t i : spec.temps) buffers[i] = temp_base + temp_offsets[i];
  }
  void* arguments[kMaxLaunchBuffers];
  for (const CompiledLaunch& launch : spec.launches) {
    for (size_t a = 0; a < launch.buffers.size(); ++a) arguments[a] = buffers[launch.buffers[a]];
    const KilnCpuKernelArgs args{arguments, symbols};
    const int64_t work = launch.work_items.evaluate(symbols, "work_items");
    const int64_t cost = launch.item_cost.evaluate(symbols, "item_cost");
    // launch() returns when every chunk has run: the barrier between launches.
    package->cpu.launch(launch.fn, args, work, cost);
  }
}

void Graph::Impl::run_cuda(const CompiledSpecialization& spec, const DLTensor* const* tensors,
                           int64_t* symbols, const CallDevice& device, void* stream) {
  detail::CudaLauncher& cuda = package->cuda;
  const detail::CudaLauncher::ContextScope context = cuda.enter(device.ordinal);
  void* buffers[kMaxPlanBuffers];
  size_t temp_offsets[kMaxPlanBuffers];
  const size_t temp_total = place_buffers(spec, tensors, symbols, buffers, temp_offsets);
  // One allocation: the temps, then cuBLASLt's workspace when a launch is a
  // gemm (its gemms run one after another on the stream, so they share it).
  size_t gemm_offset = 0;
  size_t gemm_bytes = 0;
  size_t workspace_total = temp_total;
  if (spec.has_gemm) {
    gemm_bytes = cuda.gemm_workspace_bytes(device.ordinal);
    gemm_offset = round_up(temp_total, kGemmWorkspaceAlignment);
    if (__builtin_add_overflow(gemm_offset, gemm_bytes, &workspace_total)) {
      throw Error(ErrorCode::invalid_argument,
                  cat("kiln: graph '", name, "': the call's workspace is too large"));
    }
  }
  std::optional<CudaWorkspace> workspace;
  if (spec.has_temps || spec.has_gemm) {
    workspace.emplace(cuda, device.ordinal, workspace_total, stream);
    for (uint32_t i : spec.temps) buffers[i] = workspace->data() + temp_offsets[i];
  }
  // Kernel parameters (cuda_kernel.h): the buffers' pointers, then every
  // symbol as an int64_t; the driver reads them through these addresses
  // during cuLaunchKernel. Stream order is the barrier between launches.
  void* params[kMaxLaunchBuffers + kMaxSymbols];
  for (const CompiledLaunch& launch : spec.launches) {
    if (launch.gemm) {
      run_gemm(spec, launch, tensors, symbols, buffers, workspace->data() + gemm_offset, gemm_bytes,
               device, stream);
      continue;
    }
    void* const function = cuda.function(device.ordinal, launch.kernel);
    size_t p = 0;
    for (uint32_t b : launch.buffers) params[p++] = &buffers[b];
    for (size_t s = 0; s < symbol_count; ++s) params[p++] = &symbols[s];
    detail::CudaLauncher::LaunchDims dims{};
    for (size_t d = 0; d < 3; ++d) {
      const int64_t blocks = launch.grid[d].evaluate(symbols, "grid");
      const int64_t limit = d == 0 ? int64_t{0x7fffffff} : int64_t{65535};
      if (blocks < 0 || blocks > limit) {
        throw Error(ErrorCode::invalid_argument,
                    cat("kiln: graph '", name, "': kernel '", launch.kernel_name, "' needs ",
                        blocks, " blocks in grid dimension ", d, "; CUDA allows at most ", limit));
      }
      dims.grid[d] = static_cast<uint32_t>(blocks);
      dims.block[d] = launch.block[d];
    }
    dims.shared_bytes = launch.shared_bytes;
    cuda.launch(device.ordinal, function, dims, stream, params, name, launch.kernel_name);
  }
}

void Graph::Impl::run_gemm(const CompiledSpecialization& spec, const CompiledLaunch& launch,
                           const DLTensor* const* tensors, const int64_t* symbols,
                           void* const* buffers, void* workspace, size_t workspace_bytes,
                           const CallDevice& device, void* stream) {
  const GemmProblem problem = launch.gemm->evaluate(symbols);
  auto operand = [&](size_t position, DType dtype) {
    const uint32_t b = launch.buffers[position];
    const CompiledBuffer& buffer = spec.buffers[b];
    const int64_t declared =
        buffer.has_numel ? buffer.numel.evaluate(symbols, "gemm buffer numel") : -1;
    const int32_t tensor = spec.buffer_tensor[b];
    return GemmOperand{buffers[b], detail::gemm_operand_elements(
                                       tensor >= 0 ? tensors[tensor] : nullptr, declared, dtype)};
  };
  GemmOperands operands;
  operands.a = operand(0, problem.a_dtype);
  operands.b = operand(1, problem.b_dtype);
  operands.d = operand(2, problem.d_dtype);
  if (launch.buffers.size() > 3) operands.bias = operand(3, problem.d_dtype);
  operands.workspace = workspace;
  operands.workspace_bytes = workspace_bytes;
  package->cuda.run_gemm(device.ordinal, problem, operands, stream, name, launch.kernel_name);
}

const JitEntry* Graph::Impl::select_jit(const DLTensor* const* tensors, int64_t* symbols,
                                        const CallDevice& device) const {
  std::shared_lock lock(jit_mutex);
  for (const std::unique_ptr<JitEntry>& entry : jit_entries) {
    bool null_data = false;
    if (entry->compiled.guards.passes(tensors, symbols, device.compute_capability, null_data)) {
      return entry.get();
    }
  }
  return nullptr;
}

const JitEntry& Graph::Impl::adopt(std::shared_ptr<const JitSpecialization> jit) {
  const std::span<const uint8_t> bytes = jit->specialization();
  flatbuffers::Verifier verifier(bytes.data(), bytes.size());
  if (!verifier.VerifyBuffer<fb::Specialization>(nullptr)) {
    throw Error(ErrorCode::internal, cat("kiln: graph '", name,
                                         "': the JIT returned a specialization that is not a "
                                         "valid kiln.fb.Specialization"));
  }
  const auto& spec = *flatbuffers::GetRoot<fb::Specialization>(bytes.data());
  std::unique_lock lock(jit_mutex);
  for (const std::unique_ptr<JitEntry>& adopted : jit_entries) {
    if (adopted->jit == jit) return *adopted;
  }
  auto adopted = std::make_unique<JitEntry>();
  try {
    detail::validate_specialization_guards(*entry, spec, "the JIT's specialization");
    build_specialization(adopted->compiled, spec, names, input_count, false, nullptr);
  } catch (const PackageError& e) {
    throw Error(ErrorCode::internal, cat("kiln: graph '", name, "': ", e.what()));
  }
  adopted->jit = std::move(jit);
  jit_entries.push_back(std::move(adopted));
  jit_entry_count.store(jit_entries.size(), std::memory_order_release);
  return *jit_entries.back();
}

void Graph::Impl::run_jit(const JitEntry& entry, std::span<const DLTensor* const> inputs,
                          std::span<const DLTensor* const> outputs, const int64_t* symbols,
                          const CallDevice& device, void* stream) {
  JitCall call{inputs, outputs, stream, symbols, &package->cpu, nullptr, 0};
  if (!device.cuda) {
    entry.jit->run(call);
    return;
  }
  call.cuda = &package->cuda;
  call.cuda_ordinal = device.ordinal;
  const detail::CudaLauncher::ContextScope context = package->cuda.enter(device.ordinal);
  entry.jit->run(call);
}

void Graph::Impl::serve_by_jit(JitCompiler& jit, const DLTensor* const* tensors,
                               std::span<const DLTensor* const> inputs,
                               std::span<const DLTensor* const> outputs, const CallDevice& device,
                               void* stream, std::vector<GuardFailure> failures) {
  JitRequest request{.package = package->reader,
                     .graph = name,
                     .inputs = inputs,
                     .outputs = outputs,
                     .stream = stream,
                     .failures = failures,
                     .cpu = &package->cpu,
                     .cuda_arch = {},
                     .cpu_arch = {}};
  if (const std::optional<uint32_t> target = cpu_target ? cpu_target : package->cpu.target()) {
    request.cpu_arch = package->reader.manifest().targets()->Get(*target)->arch()->string_view();
  }
  std::optional<detail::CudaLauncher::ContextScope> context;
  if (device.cuda) {
    request.cuda = &package->cuda;
    request.cuda_ordinal = device.ordinal;
    request.compute_capability = device.compute_capability;
    const detail::CudaDeviceInfo& info = package->cuda.device(device.ordinal);
    if (info.target && !info.via_ptx) {
      request.cuda_arch =
          package->reader.manifest().targets()->Get(*info.target)->arch()->string_view();
    }
    context.emplace(package->cuda.enter(device.ordinal));
  }
  std::shared_ptr<const JitSpecialization> compiled = jit.compile(request);
  if (compiled == nullptr) {
    throw NoSpecializationError(name, std::move(failures), "the JIT compiler declined");
  }
  const JitEntry& entry = adopt(std::move(compiled));
  int64_t symbols[kMaxSymbols];
  bool null_data = false;
  if (!entry.compiled.guards.passes(tensors, symbols, device.compute_capability, null_data)) {
    throw Error(ErrorCode::internal,
                cat("kiln: graph '", name, "': the JIT's specialization '", entry.compiled.name,
                    "' does not accept the call it was compiled for"));
  }
  check_no_overlap(entry.compiled, tensors, symbols);
  jit_served.fetch_add(1, std::memory_order_relaxed);
  run_jit(entry, inputs, outputs, symbols, device, stream);
}

Graph::Graph(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Graph::~Graph() = default;

std::string_view Graph::name() const { return impl_->name; }
size_t Graph::num_inputs() const { return impl_->input_count; }
size_t Graph::num_outputs() const { return impl_->output_count; }

void Graph::call(std::span<const DLTensor* const> inputs, std::span<const DLTensor* const> outputs,
                 void* stream) {
  Impl& g = *impl_;
  const DLTensor* tensors[kMaxTensors];
  g.gather(inputs, outputs, tensors);
  const CallDevice device = g.device_of(tensors);
  int64_t symbols[kMaxSymbols];
  const CompiledSpecialization* spec = g.select(tensors, symbols, device);
  // Counted once the arguments are known valid: a refused call is no call.
  g.calls.fetch_add(1, std::memory_order_relaxed);
  if (g.package->profile) [[unlikely]]
    g.package->profile->record(*g.entry, tensors);
  if (spec != nullptr) {
    g.check_no_overlap(*spec, tensors, symbols);
    g.hits.fetch_add(1, std::memory_order_relaxed);
    if (spec->cuda) {
      g.run_cuda(*spec, tensors, symbols, device, stream);
    } else {
      g.run(*spec, tensors, symbols);
    }
    return;
  }
  if (g.jit_entry_count.load(std::memory_order_acquire) > 0) {
    if (const JitEntry* entry = g.select_jit(tensors, symbols, device)) {
      g.check_no_overlap(entry->compiled, tensors, symbols);
      g.jit_hits.fetch_add(1, std::memory_order_relaxed);
      g.run_jit(*entry, inputs, outputs, symbols, device, stream);
      return;
    }
  }
  g.misses.fetch_add(1, std::memory_order_relaxed);
  std::vector<GuardFailure> failures = g.explain_miss(tensors, true, device);
  if (detail::log_topic_enabled("recompiles")) g.log_recompile(failures);
  if (g.package->stance.load(std::memory_order_relaxed) == Stance::fallback) {
    if (JitCompiler* jit = jit_compiler()) {
      g.serve_by_jit(*jit, tensors, inputs, outputs, device, stream, std::move(failures));
      return;
    }
  }
  g.throw_miss(std::move(failures));
}

void Graph::call(std::initializer_list<TensorView> inputs,
                 std::initializer_list<TensorView> outputs, void* stream) {
  if (inputs.size() + outputs.size() > kMaxTensors) {
    throw Error(ErrorCode::invalid_argument,
                cat("kiln: graph '", impl_->name, "': more than ", kMaxTensors, " tensors"));
  }
  const DLTensor* pointers[kMaxTensors];
  size_t n = 0;
  for (const TensorView& t : inputs) pointers[n++] = &t.dl();
  for (const TensorView& t : outputs) pointers[n++] = &t.dl();
  call(std::span<const DLTensor* const>(pointers, inputs.size()),
       std::span<const DLTensor* const>(pointers + inputs.size(), outputs.size()), stream);
}

std::string_view Graph::select(std::span<const DLTensor* const> inputs,
                               std::span<const DLTensor* const> outputs) {
  Impl& g = *impl_;
  const DLTensor* tensors[kMaxTensors];
  g.gather(inputs, outputs, tensors);
  const CallDevice device = g.device_of(tensors);
  int64_t symbols[kMaxSymbols];
  if (const CompiledSpecialization* spec = g.select(tensors, symbols, device)) return spec->name;
  if (g.jit_entry_count.load(std::memory_order_acquire) > 0) {
    if (const JitEntry* entry = g.select_jit(tensors, symbols, device)) return entry->compiled.name;
  }
  g.throw_miss(g.explain_miss(tensors, false, device));
}

GraphCounters Graph::counters() const {
  GraphCounters c;
  c.calls = impl_->calls.load(std::memory_order_relaxed);
  c.hits = impl_->hits.load(std::memory_order_relaxed);
  c.jit_hits = impl_->jit_hits.load(std::memory_order_relaxed);
  c.misses = impl_->misses.load(std::memory_order_relaxed);
  c.jit_served = impl_->jit_served.load(std::memory_order_relaxed);
  for (size_t k = 0; k < kGuardKindCount; ++k) {
    c.misses_by_reason[k] = impl_->misses_by_reason[k].load(std::memory_order_relaxed);
  }
  return c;
}

}  // namespace kiln
