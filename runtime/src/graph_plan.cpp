// Plan building: a graph's specializations compiled from the manifest once,
// when the package opens (and from what the JIT returns, when it is
// adopted), into the programs and tables a call evaluates; and the graph's
// construction and destruction. Nothing here runs per call, so it is built
// for size (runtime/CMakeLists.txt).
#include <algorithm>
#include <optional>
#include <string>

#include "cpu_features.h"
#include "graph_impl.h"
#include "kiln/package_reader.h"
#include "manifest_validation.h"
#include "text.h"

namespace kiln {

using detail::cat;
using detail::CompiledLaunch;
using detail::CompiledSpecialization;
using detail::JitEntry;

namespace {

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
  // A graph without symbols may have no symbol_values at all.
  compiled.sizes_checked_at_open =
      with_plan && (spec.symbol_values() == nullptr ||
                    std::ranges::all_of(*spec.symbol_values(), [](int64_t v) { return v >= 0; }));
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

}  // namespace

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
  std::vector<bool> builds_target(target_count, entry.targets() == nullptr);
  if (entry.targets()) {
    for (uint32_t t : *entry.targets()) builds_target[t] = true;  // validated < count
  }
  const detail::CpuLevel host = detail::host_cpu_level();
  std::optional<detail::CpuLevel> best_level;
  for (uint32_t t = 0; t < target_count; ++t) {
    if (!builds_target[t]) {
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
  impl->cuda_tables = std::vector<std::optional<detail::SelectionTable>>(target_count);
  for (uint32_t t = 0; t < target_count; ++t) {
    if (builds_target[t]) {
      impl->cuda_tables[t].emplace(std::move(cuda_candidates[t]), programs, tensor_count);
    }
  }
  return std::unique_ptr<Graph>(new Graph(std::move(impl)));
}

Graph::Graph(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Graph::~Graph() = default;

std::shared_ptr<const JitEntry> Graph::Impl::adopt(std::shared_ptr<const JitSpecialization> jit,
                                                   const JitCompiler& compiler, uint64_t call) {
  const std::span<const uint8_t> bytes = jit->specialization();
  flatbuffers::Verifier verifier(bytes.data(), bytes.size());
  if (!verifier.VerifyBuffer<fb::Specialization>(nullptr)) {
    throw Error(ErrorCode::internal, cat("kiln: graph '", name,
                                         "': the JIT returned a specialization that is not a "
                                         "valid kiln.fb.Specialization"));
  }
  const auto& spec = *flatbuffers::GetRoot<fb::Specialization>(bytes.data());
  const std::optional<size_t> cap = compiler.max_adopted_entries();
  std::unique_lock lock(jit_mutex);
  for (const std::shared_ptr<const JitEntry>& adopted : jit_entries) {
    if (adopted->jit == jit) return adopted;
  }
  auto adopted = std::make_shared<JitEntry>();
  try {
    detail::validate_specialization_guards(*entry, spec, "the JIT's specialization");
    build_specialization(adopted->compiled, spec, names, input_count, false, nullptr);
  } catch (const PackageError& e) {
    throw Error(ErrorCode::internal, cat("kiln: graph '", name, "': ", e.what()));
  }
  adopted->jit = std::move(jit);
  adopted->last_use.store(call, std::memory_order_relaxed);
  jit_entries.push_back(adopted);
  // The new entry is the newest: it goes only under a cap of 0, after
  // serving the call that compiled it (which holds it).
  while (cap && jit_entries.size() > *cap) {
    jit_entries.erase(std::ranges::min_element(jit_entries, {}, [](const auto& e) {
      return e->last_use.load(std::memory_order_relaxed);
    }));
    jit_evictions.fetch_add(1, std::memory_order_relaxed);
  }
  jit_entry_count.store(jit_entries.size(), std::memory_order_release);
  return adopted;
}

}  // namespace kiln
