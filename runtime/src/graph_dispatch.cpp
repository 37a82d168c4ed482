// Dispatch: a call's arguments checked, its device found, a specialization
// chosen by its guards (the package's, then the JIT's), and a miss counted,
// explained, and served by the JIT or thrown.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include "api_boundary.h"
#include "cpu_features.h"
#include "graph_impl.h"
#include "kiln/package_reader.h"
#include "log_topics.h"
#include "stance_env.h"
#include "text.h"

namespace kiln {

using detail::CallDevice;
using detail::cat;
using detail::CompiledSpecialization;
using detail::JitEntry;

namespace {

static_assert(kGuardKindCount == static_cast<size_t>(fb::GuardKind::MAX) + 1,
              "GraphCounters::misses_by_reason has one slot per guard kind");

}  // namespace

int64_t detail::element_count(const DLTensor& t) {
  int64_t numel = 1;
  for (int32_t d = 0; d < t.ndim; ++d) {
    if (__builtin_mul_overflow(numel, t.shape[d], &numel)) return -1;
  }
  return numel;
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
      const int64_t numel = detail::element_count(*tensor);
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
      const int64_t numel = detail::element_count(tensor);
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
  // graph left off that target (no table for it) is, on this device, like a
  // package without one: the JIT's, or an error.
  const std::optional<detail::SelectionTable>& table = cuda_tables[*info.target];
  if (!table) {
    const CallDevice device{true, first.device_id, info.compute_capability, &empty_table};
    if (!jit_may_serve) throw_not_built_for(device, *info.target);
    return device;
  }
  return {true, first.device_id, info.compute_capability, &*table};
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

std::shared_ptr<const JitEntry> Graph::Impl::select_jit(const DLTensor* const* tensors,
                                                        int64_t* symbols,
                                                        const CallDevice& device) const {
  std::shared_lock lock(jit_mutex);
  for (const std::shared_ptr<const JitEntry>& entry : jit_entries) {
    bool null_data = false;
    if (entry->compiled.guards.passes(tensors, symbols, device.compute_capability, null_data)) {
      return entry;
    }
  }
  return nullptr;
}

void Graph::Impl::serve_by_jit(JitCompiler& jit, const DLTensor* const* tensors,
                               std::span<const DLTensor* const> inputs,
                               std::span<const DLTensor* const> outputs, const CallDevice& device,
                               void* stream, std::vector<GuardFailure> failures, uint64_t call) {
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
  // Held for the run: another thread's adopt() may evict it meanwhile.
  const std::shared_ptr<const JitEntry> entry = adopt(std::move(compiled), jit, call);
  int64_t symbols[kMaxSymbols];
  bool null_data = false;
  if (!entry->compiled.guards.passes(tensors, symbols, device.compute_capability, null_data)) {
    throw Error(ErrorCode::internal,
                cat("kiln: graph '", name, "': the JIT's specialization '", entry->compiled.name,
                    "' does not accept the call it was compiled for"));
  }
  check_no_overlap(entry->compiled, tensors, symbols);
  jit_served.fetch_add(1, std::memory_order_relaxed);
  run_jit(*entry, inputs, outputs, symbols, device, stream);
}

std::string_view Graph::name() const { return impl_->name; }
size_t Graph::num_inputs() const { return impl_->input_count; }
size_t Graph::num_outputs() const { return impl_->output_count; }

void Graph::call(std::span<const DLTensor* const> inputs, std::span<const DLTensor* const> outputs,
                 void* stream) {
  detail::translate_exceptions("graph", impl_->name, [&] { impl_->call(inputs, outputs, stream); });
}

void Graph::Impl::call(std::span<const DLTensor* const> inputs,
                       std::span<const DLTensor* const> outputs, void* stream) {
  Impl& g = *this;
  const DLTensor* tensors[kMaxTensors];
  g.gather(inputs, outputs, tensors);
  const CallDevice device = g.device_of(tensors);
  int64_t symbols[kMaxSymbols];
  const CompiledSpecialization* spec = g.select(tensors, symbols, device);
  // Counted once the arguments are known valid: a refused call is no call.
  // Its number stamps the JIT entry it runs (least recently used eviction).
  const uint64_t call = g.calls.fetch_add(1, std::memory_order_relaxed) + 1;
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
    // Held for the run: another thread's adopt() may evict it meanwhile.
    if (const std::shared_ptr<const JitEntry> entry = g.select_jit(tensors, symbols, device)) {
      g.check_no_overlap(entry->compiled, tensors, symbols);
      g.jit_hits.fetch_add(1, std::memory_order_relaxed);
      entry->last_use.store(call, std::memory_order_relaxed);
      g.run_jit(*entry, inputs, outputs, symbols, device, stream);
      return;
    }
  }
  g.misses.fetch_add(1, std::memory_order_relaxed);
  std::vector<GuardFailure> failures = g.explain_miss(tensors, true, device);
  if (detail::log_topic_enabled("recompiles")) g.log_recompile(failures);
  if (g.package->stance.load(std::memory_order_relaxed) == Stance::fallback) {
    if (JitCompiler* jit = jit_compiler()) {
      g.serve_by_jit(*jit, tensors, inputs, outputs, device, stream, std::move(failures), call);
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
  return detail::translate_exceptions("graph", impl_->name,
                                      [&] { return impl_->select_name(inputs, outputs); });
}

std::string_view Graph::Impl::select_name(std::span<const DLTensor* const> inputs,
                                          std::span<const DLTensor* const> outputs) {
  Impl& g = *this;
  const DLTensor* tensors[kMaxTensors];
  g.gather(inputs, outputs, tensors);
  const CallDevice device = g.device_of(tensors);
  int64_t symbols[kMaxSymbols];
  if (const CompiledSpecialization* spec = g.select(tensors, symbols, device)) return spec->name;
  if (g.jit_entry_count.load(std::memory_order_acquire) > 0) {
    if (const std::shared_ptr<const JitEntry> entry = g.select_jit(tensors, symbols, device)) {
      // The entry may be evicted once this returns: the name outlives it.
      const std::lock_guard lock(g.selected_jit_names_mutex);
      return *g.selected_jit_names.insert(entry->compiled.name).first;
    }
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
  c.jit_evictions = impl_->jit_evictions.load(std::memory_order_relaxed);
  for (size_t k = 0; k < kGuardKindCount; ++k) {
    c.misses_by_reason[k] = impl_->misses_by_reason[k].load(std::memory_order_relaxed);
  }
  return c;
}

}  // namespace kiln
