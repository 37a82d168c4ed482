#include "kiln/jit/fallback_jit.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <new>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cache_entry.h"
#include "cache_stats_file.h"
#include "call_binding.h"
#include "clang_build.h"
#include "compiler_identity.h"
#include "cpu_features.h"
#include "cpu_module.h"
#include "cuda_specialization.h"
#include "disk_cache.h"
#include "ir_from_package.h"
#include "kiln/abi/library_call.h"
#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/generator.h"
#include "kiln/compiler/hash.h"
#include "kiln/compiler/package_writer.h"
#include "kiln/jit/cache_admin.h"
#include "kiln/jit_launchers.h"
#include "kiln/package_reader.h"
#include "kiln/support/env.h"
#include "kiln/support/identifier.h"
#include "log_topics.h"
#include "manifest_builder.h"
#include "nvrtc_build.h"
#include "nvrtc_library.h"
#include "size_history.h"

namespace kiln::jit {
namespace fs = std::filesystem;
namespace {

// The JIT lowers with the generator's codegen, and the key's options
// component names it.
constexpr const char* kCodegenOptions = compiler::kCpuCodegenVersion;

std::string env(const char* name) { return std::string(support::env_value(name).value_or("")); }

struct AlignedDelete {
  void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{64}); }
};

// A compiled specialization: the loaded module, its resolved kernels, the
// launch plan lowering produced, and what the runtime and an export need:
// its kiln.fb.Specialization (guards, plan, key) and the shared object.
struct Compiled final : JitSpecialization {
  std::unique_ptr<::kiln::detail::CpuModule> module;
  std::vector<KilnCpuKernelFn> kernels;
  compiler::CpuLoweredGraph plan;
  size_t symbol_count = 0;
  std::string graph;
  std::string target;  // "cpu:x86-64-v3"
  std::vector<std::byte> image;
  // Target 0, kernels 0.. in plan order: an export renumbers both.
  std::vector<uint8_t> specialization_fb;

  std::span<const uint8_t> specialization() const noexcept override { return specialization_fb; }
  void run(const JitCall& call) const override;
};

void Compiled::run(const JitCall& call) const {
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

using CompiledPtr = std::shared_ptr<const Compiled>;

// One kiln.fb.Specialization as a finished FlatBuffer: what the runtime
// adopts and an export unpacks.
std::vector<uint8_t> pack_specialization(std::unique_ptr<fb::SpecializationT> spec) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(fb::Specialization::Pack(fbb, spec.get()));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

// Whether every tensor's first byte is a multiple of `alignment`.
bool all_aligned(std::span<const DLTensor* const> a, std::span<const DLTensor* const> b,
                 uintptr_t alignment) {
  for (auto span : {a, b}) {
    for (const DLTensor* t : span) {
      if ((reinterpret_cast<uintptr_t>(t->data) + t->byte_offset) % alignment != 0) return false;
    }
  }
  return true;
}

}  // namespace

struct FallbackJit::Impl {
  // A compiled specialization: one of the two is set.
  struct Served {
    std::shared_ptr<const Compiled> cpu;
    std::shared_ptr<const detail::CudaSpecialization> cuda;
    std::shared_ptr<const JitSpecialization> specialization() const {
      if (cpu) return cpu;
      return cuda;
    }
  };

  JitOptions options;
  std::optional<detail::DiskCache> disk;

  std::mutex mutex;
  // By (package checksum, graph): the IR, rebuilt once per package.
  std::unordered_map<std::string, std::shared_ptr<const ir::Graph>> graphs;
  // By (package checksum, graph, symbol values). A pending future is a
  // compile in flight: threads missing the same key wait on it.
  std::unordered_map<std::string, std::shared_future<Served>> compiled;
  // By graph structure: per symbol, the first sizes that got a static
  // specialization, in this process or (from the disk cache's size
  // history) an earlier one.
  std::unordered_map<std::string, std::vector<std::vector<int64_t>>> static_sizes;

  // By package checksum: what this JIT compiled or loaded for it, in order,
  // for export_compiled().
  std::unordered_map<std::string, std::vector<Served>> served;

  std::atomic<uint64_t> requests{0}, memory_hits{0}, disk_hits{0}, compiles{0}, compile_failures{0},
      compile_ns{0}, corrupt_entries{0}, store_failures{0}, declined{0}, evictions{0},
      bypass_disk_off{0};

  std::shared_ptr<const ir::Graph> graph_for(const JitRequest& r, const std::string& package_id);
  CompiledPtr build(const ir::Graph& g, const ir::SymbolValues& values, std::string_view cpu_arch);
  // NVRTC for sm_<arch>, loaded through the request's CUDA launcher.
  std::shared_ptr<const detail::CudaSpecialization> build_cuda(const ir::Graph& g,
                                                               const ir::SymbolValues& values,
                                                               const JitRequest& r, int arch,
                                                               bool aligned16);
  // The disk cache's half of a build: the entry's payload, or nullopt on a
  // miss (a corrupt entry counted and removed). Counts a bypass when off.
  std::optional<detail::CacheEntry> lookup(const std::string& key, const ir::Graph& g,
                                           size_t code_blobs);
  // A build's cache half, shared by both devices: the disk entry made into a
  // specialization by `make`, else `compile()` (lower, compile, describe;
  // timed whole) stored and made. A hit that cannot be made is corrupt and
  // recompiled; a compiler failure is counted and rethrown, nothing stored.
  template <typename Make, typename Compile>
  auto cached(const std::string& key, const ir::Graph& g, size_t code_blobs,
              const compiler::KeyComponents& components, Make make, Compile compile)
      -> decltype(make(detail::CacheEntry{})) {
    if (std::optional<detail::CacheEntry> entry = lookup(key, g, code_blobs)) {
      try {
        auto c = make(std::move(*entry));
        disk_hits.fetch_add(1, std::memory_order_relaxed);
        record({{"disk_hits", 1}});
        return c;
      } catch (const Error&) {
        // Checksummed but not loadable: treated as corrupt, recompiled below.
        corrupt_entries.fetch_add(1, std::memory_order_relaxed);
        record({{"corrupt_entries", 1}});
      }
    }
    log_miss(g, key, components);
    const auto start = std::chrono::steady_clock::now();
    detail::CacheEntry entry;
    try {
      entry = compile();
    } catch (const JitCompileError&) {
      compile_failures.fetch_add(1, std::memory_order_relaxed);
      record({{"compile_failures", 1}});
      throw;
    }
    store(key, detail::pack_entry(entry),
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::steady_clock::now() - start)
                                    .count()));
    return make(std::move(entry));
  }
  // Stores a compiled payload, prunes to the cap, and records the compile.
  void store(const std::string& key, std::span<const std::byte> payload, uint64_t elapsed_ns);
  void log_miss(const ir::Graph& g, const std::string& key,
                const compiler::KeyComponents& components) const;
  std::shared_ptr<Compiled> load(std::vector<std::byte> image, compiler::CpuLoweredGraph plan,
                                 const std::string& label);
  // Adds this process's outcome to the cache directory's counters (`kiln
  // cache stats`).
  void record(const detail::StatsMap& delta) const {
    if (disk) detail::add_to_cache_stats(disk->dir(), delta);
  }
  // The specialization to serve `values` with: static, except symbols that
  // already had options.dynamic_after other sizes in this graph.
  ir::SymbolValues specialize(const JitRequest& r, const ir::SymbolValues& values);
};

FallbackJit::FallbackJit(JitOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.cxx.empty()) options.cxx = env("KILN_CLANGXX");
  if (options.cxx.empty()) options.cxx = KILN_JIT_DEFAULT_CLANGXX;
  if (options.tag.empty()) options.tag = env("KILN_CACHE_TAG");
  if (!options.max_size) options.max_size = cache_max_size_from_env();
  if (options.disk_cache) {
    if (options.cache_dir.empty()) options.cache_dir = default_cache_dir();
    if (!options.cache_dir.empty()) impl_->disk.emplace(options.cache_dir);
  }
  if (!impl_->disk) options.cache_dir.clear();
  impl_->options = std::move(options);
}

FallbackJit::~FallbackJit() = default;

const fs::path& FallbackJit::cache_dir() const noexcept { return impl_->options.cache_dir; }
const std::string& FallbackJit::cxx() const noexcept { return impl_->options.cxx; }

JitCounters FallbackJit::counters() const {
  const Impl& i = *impl_;
  JitCounters c;
  c.requests = i.requests.load(std::memory_order_relaxed);
  c.memory_hits = i.memory_hits.load(std::memory_order_relaxed);
  c.disk_hits = i.disk_hits.load(std::memory_order_relaxed);
  c.compiles = i.compiles.load(std::memory_order_relaxed);
  c.compile_failures = i.compile_failures.load(std::memory_order_relaxed);
  c.compile_ns = i.compile_ns.load(std::memory_order_relaxed);
  c.corrupt_entries = i.corrupt_entries.load(std::memory_order_relaxed);
  c.store_failures = i.store_failures.load(std::memory_order_relaxed);
  c.declined = i.declined.load(std::memory_order_relaxed);
  c.evictions = i.evictions.load(std::memory_order_relaxed);
  c.bypass_disk_off = i.bypass_disk_off.load(std::memory_order_relaxed);
  c.bypass_unsupported_device = c.declined;
  c.bypass_store_failed = c.store_failures;
  c.bypasses = c.bypass_disk_off + c.bypass_unsupported_device + c.bypass_store_failed;
  return c;
}

std::shared_ptr<const ir::Graph> FallbackJit::Impl::graph_for(const JitRequest& r,
                                                              const std::string& package_id) {
  const std::string id = package_id + "/" + std::string(r.graph);
  {
    std::lock_guard lock(mutex);
    if (auto it = graphs.find(id); it != graphs.end()) return it->second;
  }
  const fb::Manifest& m = r.package.manifest();
  const fb::GraphEntry* entry =
      m.graphs() ? m.graphs()->LookupByKey(std::string(r.graph).c_str()) : nullptr;
  if (entry == nullptr) {
    throw Error(ErrorCode::graph_not_found,
                "kiln: JIT: the package has no graph '" + std::string(r.graph) + "'");
  }
  auto g = std::make_shared<const ir::Graph>(detail::graph_from_package(*entry));
  std::lock_guard lock(mutex);
  return graphs.emplace(id, std::move(g)).first->second;
}

std::shared_ptr<Compiled> FallbackJit::Impl::load(std::vector<std::byte> image,
                                                  compiler::CpuLoweredGraph plan,
                                                  const std::string& label) {
  auto c = std::make_shared<Compiled>();
  c->module = std::make_unique<::kiln::detail::CpuModule>(image, label);
  for (const compiler::CpuKernel& k : plan.kernels) {
    c->kernels.push_back(c->module->resolve(k.entry.c_str(), k.entry));
  }
  c->plan = std::move(plan);
  c->image = std::move(image);
  return c;
}

CompiledPtr FallbackJit::Impl::build(const ir::Graph& g, const ir::SymbolValues& values,
                                     std::string_view cpu_arch) {
  // The package's own CPU level when it has one, so that an exported
  // specialization merges into the target the runtime already runs here.
  std::string arch(cpu_arch);
  if (arch.empty()) {
    const ::kiln::detail::CpuLevel level = ::kiln::detail::host_cpu_level();
    if (level == ::kiln::detail::CpuLevel::none) {
      throw Error(ErrorCode::kernel_load_failed,
                  "kiln: graph '" + g.name + "': the JIT compiles CPU code for x86-64 only, got " +
                      std::string(::kiln::detail::cpu_level_name(level)));
    }
    arch = ::kiln::detail::cpu_level_name(level);
  }
  const std::vector<std::string> flags = compiler::cpu_compile_flags(arch);
  std::string options_text = kCodegenOptions;
  for (const std::string& f : flags) options_text += ' ' + f;
  const std::string identity = std::string("kiln ") + KILN_VERSION + "; " + kCodegenOptions + "; " +
                               detail::compiler_identity(options.cxx, options.cache_dir, g.name);

  // The key: the generator's components, the options component over the
  // codegen version and flags. Not over the generated text, so that a hit
  // needs no lowering: the entry holds the plan that matches its code.
  const compiler::KeyInputs inputs{"cpu:" + arch, options_text, identity, options.tag, values};
  const compiler::KeyComponents components = compiler::key_components(g, inputs);
  const compiler::Hash128 key_hash = compiler::combine_key(components);
  const std::string key = key_hash.hex();
  const std::string label = "JIT entry " + key + " of graph '" + g.name + "'";
  auto make = [&](detail::CacheEntry entry) {
    const auto* spec = flatbuffers::GetRoot<fb::Specialization>(entry.specialization.data());
    std::shared_ptr<Compiled> c =
        load(std::move(entry.code.at(0)), detail::cpu_plan(*spec, entry.kernels), label);
    c->symbol_count = g.symbols.size();
    c->graph = g.name;
    c->target = "cpu:" + arch;
    c->specialization_fb = std::move(entry.specialization);
    return CompiledPtr(std::move(c));
  };

  return cached(key, g, 1, components, make, [&] {
    compiler::CpuCodegenOptions co;
    co.entry_prefix = support::c_identifier("kiln_jit_" + g.name) + "_" + key.substr(0, 16);
    const compiler::CpuLoweredGraph plan = compiler::lower_cpu(g, values, co);
    detail::CacheEntry entry;
    entry.code.push_back(detail::build_shared_object(options.cxx, flags, plan.kernels, g.name));
    // What the runtime adopts: the guards the generator would give this
    // specialization, its plan and key.
    entry.specialization = pack_specialization(
        compiler::specialization(compiler::specialization_name(g, values), 0, values,
                                 compiler::specialization_guards(g, values, kDLCPU),
                                 compiler::launch_plan(plan, 0), key_hash, components));
    for (const compiler::CpuKernel& k : plan.kernels) entry.kernels.push_back(k.entry);
    return entry;
  });
}

std::optional<detail::CacheEntry> FallbackJit::Impl::lookup(const std::string& key,
                                                            const ir::Graph& g, size_t code_blobs) {
  if (!disk) {
    bypass_disk_off.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  std::vector<std::byte> payload;
  const detail::DiskCache::Lookup found = disk->load(key, payload);
  if (found == detail::DiskCache::Lookup::miss) return std::nullopt;
  if (found == detail::DiskCache::Lookup::hit) {
    std::optional<detail::CacheEntry> entry = detail::unpack_entry(payload);
    // code_blobs 0: one per kernel (CUDA).
    if (entry && detail::fits_graph(entry->specialization, g.symbols.size()) &&
        entry->code.size() == (code_blobs > 0 ? code_blobs : entry->kernels.size())) {
      return entry;
    }
    disk->remove(key);
  }
  corrupt_entries.fetch_add(1, std::memory_order_relaxed);
  record({{"corrupt_entries", 1}});
  return std::nullopt;
}

void FallbackJit::Impl::store(const std::string& key, std::span<const std::byte> payload,
                              uint64_t elapsed_ns) {
  compiles.fetch_add(1, std::memory_order_relaxed);
  compile_ns.fetch_add(elapsed_ns, std::memory_order_relaxed);
  detail::StatsMap outcome = {{"compiles", 1}, {"compile_ns", elapsed_ns}};
  if (disk) {
    if (!disk->store(key, payload)) {
      store_failures.fetch_add(1, std::memory_order_relaxed);
      outcome["bypass_store_failed"] = 1;
    } else if (options.max_size) {
      // After the store, so the new entry is the most recent and survives.
      const uint64_t evicted = prune_cache(disk->dir(), *options.max_size);
      evictions.fetch_add(evicted, std::memory_order_relaxed);
      if (evicted > 0) outcome["evictions"] = evicted;
    }
  }
  record(outcome);
}

void FallbackJit::Impl::log_miss(const ir::Graph& g, const std::string& key,
                                 const compiler::KeyComponents& components) const {
  if (!::kiln::detail::log_topic_enabled("cache")) return;
  std::fprintf(stderr,
               "kiln: cache miss graph '%s' key %s: structure %s dtypes %s shapes %s target %s "
               "options %s compiler %s runtime %s tag %s\n",
               g.name.c_str(), key.c_str(), components.structure.hex().c_str(),
               components.dtypes.hex().c_str(), components.shapes.hex().c_str(),
               components.target.hex().c_str(), components.options.hex().c_str(),
               components.compiler.hex().c_str(), components.runtime.hex().c_str(),
               components.tag.hex().c_str());
}

std::shared_ptr<const detail::CudaSpecialization> FallbackJit::Impl::build_cuda(
    const ir::Graph& g, const ir::SymbolValues& values, const JitRequest& r, int arch,
    bool aligned16) {
  const std::string target = "cuda:sm_" + std::to_string(arch);
  std::string options_text = compiler::kCudaCodegenVersion;
  options_text += aligned16 ? " aligned16" : " unaligned";
  options_text += " nvrtc";
  for (const std::string& o : detail::nvrtc_options(arch)) options_text += ' ' + o;
  const std::string identity = std::string("kiln ") + KILN_VERSION + "; " +
                               compiler::kCudaCodegenVersion + "; " + detail::nvrtc_version(g.name);
  // Keyed as the CPU side is: not over the generated text (the entry holds
  // the plan that matches its cubins).
  const compiler::KeyInputs inputs{target, options_text, identity, options.tag, values};
  const compiler::KeyComponents components = compiler::key_components(g, inputs);
  const compiler::Hash128 key_hash = compiler::combine_key(components);
  const std::string key = key_hash.hex();
  const std::string label = "JIT entry " + key + " of graph '" + g.name + "'";
  auto make = [&](detail::CacheEntry entry) {
    const auto* spec = flatbuffers::GetRoot<fb::Specialization>(entry.specialization.data());
    auto c = std::make_shared<detail::CudaSpecialization>(
        detail::cuda_plan(*spec, entry.kernels), std::move(entry.code), *r.cuda, r.cuda_ordinal,
        g.symbols.size(), g.name, target, label, detail::cuda_gemms(*spec));
    c->specialization_fb = std::move(entry.specialization);
    return std::shared_ptr<const detail::CudaSpecialization>(std::move(c));
  };

  return cached(key, g, 0, components, make, [&] {
    compiler::CudaCodegenOptions co;
    co.entry_prefix = support::c_identifier("kiln_jit_" + g.name) + "_" + key.substr(0, 16);
    co.aligned16 = aligned16;
    co.nvrtc = true;
    const compiler::CudaLoweredGraph plan = compiler::lower_cuda(g, values, co);
    detail::CacheEntry entry;
    entry.code = detail::build_cubins(plan.kernels, arch, g.name);
    auto guards = compiler::specialization_guards(
        g, values, kDLCUDA, plan.vectorized ? compiler::kCudaVectorAlignment : 1);
    guards.push_back(compiler::cuda_arch_guard(arch, false));
    entry.specialization = pack_specialization(compiler::specialization(
        compiler::specialization_name(g, values) + (aligned16 ? "" : ",unaligned"), 0, values,
        std::move(guards), compiler::launch_plan(plan, 0), key_hash, components));
    for (const compiler::CudaKernel& k : plan.kernels) entry.kernels.push_back(k.entry);
    return entry;
  });
}

ir::SymbolValues FallbackJit::Impl::specialize(const JitRequest& r,
                                               const ir::SymbolValues& values) {
  ir::SymbolValues spec = values;
  // By structure, not package: a rebuilt package keeps its graphs' history.
  // The package's own structure hash, the generator's: hashing the IR again
  // would canonicalize it, a cost that grows with the graph on every miss.
  const fb::GraphEntry* entry =
      r.package.manifest().graphs()->LookupByKey(std::string(r.graph).c_str());
  const fb::Hash128* stored = entry->structure_hash();
  const std::string graph_hash = stored != nullptr
                                     ? compiler::Hash128{stored->lo(), stored->hi()}.hex()
                                     : std::string(r.graph);
  std::optional<detail::SizeHistory> history;
  if (disk) history.emplace(disk->dir(), graph_hash);
  std::lock_guard lock(mutex);
  auto [it, first_use] = static_sizes.try_emplace(graph_hash);
  std::vector<std::vector<int64_t>>& seen = it->second;
  if (first_use && history) seen = history->load(values.size());
  seen.resize(values.size());
  for (size_t s = 0; s < values.size(); ++s) {
    std::vector<int64_t>& sizes = seen[s];
    const auto known = std::find(sizes.begin(), sizes.end(), values[s]);
    // Only the first dynamic_after sizes got static code; one recorded later
    // (by another process, past the cap) does not count.
    if (known != sizes.end() &&
        static_cast<size_t>(known - sizes.begin()) < options.dynamic_after) {
      continue;
    }
    // A symbol whose size keeps changing would compile once per size: after
    // dynamic_after sizes it is compiled once, reading its size at run time.
    if (sizes.size() < options.dynamic_after) {
      sizes.push_back(values[s]);
      if (history) history->append(s, values[s]);
    } else {
      spec[s] = -1;
    }
  }
  return spec;
}

std::shared_ptr<const JitSpecialization> FallbackJit::compile(const JitRequest& request) {
  Impl& i = *impl_;
  i.requests.fetch_add(1, std::memory_order_relaxed);
  const KilnPackageHeader& header = request.package.header();
  const std::string package_id = compiler::Hash128{header.checksum_lo, header.checksum_hi}.hex();
  const std::shared_ptr<const ir::Graph> g = i.graph_for(request, package_id);
  const bool cuda = request.cuda != nullptr;
  const std::optional<ir::SymbolValues> values =
      detail::bind_call(*g, request.inputs, request.outputs, cuda ? kDLCUDA : kDLCPU);
  if (!values) {
    i.declined.fetch_add(1, std::memory_order_relaxed);
    i.record({{"bypass_unsupported_device", 1}});
    return nullptr;
  }
  const std::string graph_id = package_id + "/" + g->name;
  const ir::SymbolValues spec_values = i.specialize(request, *values);
  // CUDA code is loaded through one package's launcher, so it is shared
  // only within it; the device's arch and the call's alignment choose the
  // code.
  int cuda_arch = 0;
  bool aligned16 = false;
  std::string id = graph_id;
  if (cuda) {
    cuda_arch = request.compute_capability;
    if (request.cuda_arch.starts_with("sm_")) {
      cuda_arch = std::atoi(std::string(request.cuda_arch.substr(3)).c_str());
    }
    aligned16 = all_aligned(request.inputs, request.outputs,
                            static_cast<uintptr_t>(compiler::kCudaVectorAlignment));
    id += "/cuda/" + std::to_string(request.cuda->instance_id()) + "/" +
          std::to_string(request.cuda_ordinal) + "/sm_" + std::to_string(cuda_arch) +
          (aligned16 ? "/a16" : "/a1");
  } else {
    id += "/cpu/" + std::string(request.cpu_arch);
  }
  for (int64_t v : spec_values) {
    id += '/';
    id += std::to_string(v);
  }

  std::shared_future<Impl::Served> pending;
  std::promise<Impl::Served> promise;
  bool leader = false;
  {
    std::lock_guard lock(i.mutex);
    auto it = i.compiled.find(id);
    if (it == i.compiled.end()) {
      pending = promise.get_future().share();
      i.compiled.emplace(id, pending);
      leader = true;
    } else {
      pending = it->second;
    }
  }
  if (leader) {
    try {
      Impl::Served built;
      if (cuda) {
        built.cuda = i.build_cuda(*g, spec_values, request, cuda_arch, aligned16);
      } else {
        built.cpu = i.build(*g, spec_values, request.cpu_arch);
      }
      {
        std::lock_guard lock(i.mutex);
        i.served[package_id].push_back(built);
      }
      promise.set_value(std::move(built));
    } catch (...) {
      // Errors are not cached: the next call tries again. Waiters see this
      // call's error.
      {
        std::lock_guard lock(i.mutex);
        i.compiled.erase(id);
      }
      promise.set_exception(std::current_exception());
      throw;
    }
  }
  const Impl::Served compiled = pending.get();  // a waiter rethrows the leader's error
  if (!leader) i.memory_hits.fetch_add(1, std::memory_order_relaxed);
  return compiled.specialization();
}

namespace {

// Builds a delta package: the base's graph entries (signature, structure
// hash, IR) holding only what was compiled, with each specialization's code
// as blobs, for `kiln merge`.
class DeltaBuilder {
 public:
  explicit DeltaBuilder(const fb::Manifest& base) : base_(base) {}

  void add_cpu(const Compiled& c) {
    const uint32_t target = target_index(c.target, fb::DeviceKind::Cpu);
    const uint32_t blob = add_blob(fb::BlobKind::CpuSharedObject, target, c.image);
    const auto kernel_base = static_cast<uint32_t>(manifest_.kernels.size());
    for (const compiler::CpuKernel& k : c.plan.kernels) add_kernel(k.entry, target, blob);
    add_specialization(c.graph, c.specialization_fb, target,
                       compiler::launch_plan(c.plan, kernel_base));
  }

  void add_cuda(const detail::CudaSpecialization& c) {
    const uint32_t target = target_index(c.target(), fb::DeviceKind::Cuda);
    const auto kernel_base = static_cast<uint32_t>(manifest_.kernels.size());
    for (size_t k = 0; k < c.plan().kernels.size(); ++k) {
      add_kernel(c.plan().kernels[k].entry, target,
                 add_blob(fb::BlobKind::Cubin, target, c.cubins()[k]));
    }
    // The stored plan, kernels renumbered: it carries the library calls
    // (kernel kNoKernel, kept) as the runtime ran them.
    std::unique_ptr<fb::LaunchPlanT> plan(
        flatbuffers::GetRoot<fb::Specialization>(c.specialization_fb.data())->plan()->UnPack());
    for (auto& launch : plan->launches) {
      if (launch->kernel != kNoKernel) launch->kernel += kernel_base;
    }
    add_specialization(c.graph(), c.specialization_fb, target, std::move(plan));
  }

  void write(const fs::path& path, const std::string& compiler) {
    manifest_.provenance = std::make_unique<fb::ProvenanceT>();
    manifest_.provenance->kiln_version = KILN_VERSION;
    manifest_.provenance->compilers.push_back(compiler);
    try {
      compiler::write_package_file(path, std::move(manifest_), std::move(blobs_));
    } catch (const std::exception& e) {
      throw Error(ErrorCode::io,
                  "kiln: export_compiled to '" + path.string() + "' failed: " + e.what());
    }
  }

 private:
  uint32_t target_index(const std::string& name, fb::DeviceKind device) {
    auto [it, added] = targets_.emplace(name, static_cast<uint32_t>(manifest_.targets.size()));
    if (added) {
      auto t = std::make_unique<fb::TargetT>();
      t->name = name;
      t->device = device;
      t->arch = name.substr(name.find(':') + 1);
      manifest_.targets.push_back(std::move(t));
    }
    return it->second;
  }

  uint32_t add_blob(fb::BlobKind kind, uint32_t target, std::span<const std::byte> bytes) {
    compiler::BlobInput input;
    input.kind = kind;
    input.target = target;
    input.bytes.assign(reinterpret_cast<const uint8_t*>(bytes.data()),
                       reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size());
    blobs_.push_back(std::move(input));
    return static_cast<uint32_t>(blobs_.size() - 1);
  }

  void add_kernel(const std::string& entry, uint32_t target, uint32_t blob) {
    auto kernel = std::make_unique<fb::KernelT>();
    kernel->name = entry;
    kernel->target = target;
    kernel->blob = blob;
    kernel->entry = entry;
    manifest_.kernels.push_back(std::move(kernel));
  }

  void add_specialization(const std::string& graph, const std::vector<uint8_t>& spec_fb,
                          uint32_t target, std::unique_ptr<fb::LaunchPlanT> plan) {
    fb::GraphEntryT*& entry = graphs_[graph];
    if (entry == nullptr) {
      const fb::GraphEntry* found =
          base_.graphs() ? base_.graphs()->LookupByKey(graph.c_str()) : nullptr;
      if (found == nullptr) {
        throw Error(ErrorCode::internal,
                    "kiln: export_compiled: the package has no graph '" + graph + "'");
      }
      manifest_.graphs.emplace_back(found->UnPack());
      entry = manifest_.graphs.back().get();
      entry->specializations.clear();
    }
    std::unique_ptr<fb::SpecializationT> spec(
        flatbuffers::GetRoot<fb::Specialization>(spec_fb.data())->UnPack());
    spec->target = target;
    spec->plan = std::move(plan);
    entry->specializations.push_back(std::move(spec));
  }

  const fb::Manifest& base_;
  fb::ManifestT manifest_;
  std::vector<compiler::BlobInput> blobs_;
  std::unordered_map<std::string, fb::GraphEntryT*> graphs_;
  std::unordered_map<std::string, uint32_t> targets_;
};

}  // namespace

size_t FallbackJit::export_compiled(const PackageReader& package, const fs::path& path) {
  const KilnPackageHeader& header = package.header();
  const std::string package_id = compiler::Hash128{header.checksum_lo, header.checksum_hi}.hex();
  std::vector<Impl::Served> served;
  {
    std::lock_guard lock(impl_->mutex);
    if (auto it = impl_->served.find(package_id); it != impl_->served.end()) served = it->second;
  }
  DeltaBuilder delta(package.manifest());
  std::unordered_set<std::string> keys;
  size_t count = 0;
  for (const Impl::Served& s : served) {
    // The same code loaded through two packages of these bytes, or twice on
    // two devices: one copy.
    const std::span<const uint8_t> fbs = s.specialization()->specialization();
    const fb::Hash128* key = flatbuffers::GetRoot<fb::Specialization>(fbs.data())->key();
    if (key != nullptr && !keys.insert(compiler::Hash128{key->lo(), key->hi()}.hex()).second) {
      continue;
    }
    if (s.cpu) delta.add_cpu(*s.cpu);
    if (s.cuda) delta.add_cuda(*s.cuda);
    ++count;
  }
  delta.write(path, impl_->options.cxx);
  return count;
}

FallbackJit& install(JitOptions options) {
  static std::mutex mutex;
  static std::vector<std::unique_ptr<FallbackJit>> installed;
  std::lock_guard lock(mutex);
  installed.push_back(std::make_unique<FallbackJit>(std::move(options)));
  set_jit_compiler(installed.back().get());
  return *installed.back();
}

}  // namespace kiln::jit
