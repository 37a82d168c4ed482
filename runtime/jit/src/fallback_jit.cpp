#include "kiln/jit/fallback_jit.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <list>
#include <mutex>
#include <new>
#include <optional>
#include <unordered_map>
#include <vector>

#include "cache_dir.h"
#include "cache_entry.h"
#include "cache_stats_file.h"
#include "call_binding.h"
#include "clang_build.h"
#include "compiler_identity.h"
#include "cpu_specialization.h"
#include "cuda_specialization.h"
#include "delta_export.h"
#include "disk_cache.h"
#include "kiln/abi/library_call.h"
#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/generator.h"
#include "kiln/compiler/hash.h"
#include "kiln/compiler/ir_flatbuffers.h"
#include "kiln/compiler/manifest_builder.h"
#include "kiln/jit/cache_admin.h"
#include "kiln/jit_launchers.h"
#include "kiln/package_reader.h"
#include "kiln/runtime_internal/cpu_features.h"
#include "kiln/runtime_internal/log_topics.h"
#include "kiln/support/crypto.h"
#include "kiln/support/env.h"
#include "kiln/support/identifier.h"
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

using detail::CpuSpecialization;
using CompiledPtr = std::shared_ptr<const CpuSpecialization>;

// $KILN_CACHE_MAX_MEMORY_ENTRIES: a count of specializations; nullopt when
// unset or empty.
std::optional<size_t> max_memory_entries_from_env() {
  const std::optional<std::string_view> text = support::env_value("KILN_CACHE_MAX_MEMORY_ENTRIES");
  if (!text) return std::nullopt;
  size_t value = 0;
  const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || end != text->data() + text->size()) {
    throw Error(ErrorCode::invalid_argument,
                "kiln: KILN_CACHE_MAX_MEMORY_ENTRIES: expected a count of specializations "
                "(\"64\"), got '" +
                    std::string(*text) + "'");
  }
  return value;
}

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
  using Served = detail::ServedSpecialization;
  // One specialization held in memory. A pending future is a compile in
  // flight: threads missing the same key wait on it.
  struct MemoryEntry {
    std::shared_future<Served> result;
    std::string package_id;
    std::list<std::string>::iterator recency;  // its place in `recent`
  };

  JitOptions options;
  std::optional<detail::DiskCache> disk;

  std::mutex mutex;
  // By (package checksum, graph): the IR, read from the package on its
  // first request. At most options.max_memory_entries of them, the least
  // recently requested dropped first (read again when asked for), so a
  // server that opens package after package does not keep every one's IR.
  struct GraphIr {
    std::shared_ptr<const ir::Graph> graph;
    std::list<std::string>::iterator recency;  // its place in `recent_graphs`
  };
  std::unordered_map<std::string, GraphIr> graphs;
  // The ids of `graphs`, most recently requested first.
  std::list<std::string> recent_graphs;
  // By (package checksum, graph, device, symbol values); at most
  // options.max_memory_entries finished ones, the least recently used
  // evicted first (trim_memory).
  std::unordered_map<std::string, MemoryEntry> compiled;
  // The ids of `compiled`, most recently used first.
  std::list<std::string> recent;
  // By graph structure: per symbol, the first sizes that got a static
  // specialization, in this process or (from the disk cache's size
  // history) an earlier one.
  std::unordered_map<std::string, std::vector<std::vector<int64_t>>> static_sizes;

  // By package checksum: what this JIT compiled or loaded for it and still
  // holds in `compiled`, in order, for export_compiled().
  std::unordered_map<std::string, std::vector<Served>> served;

  std::atomic<uint64_t> requests{0}, memory_hits{0}, disk_hits{0}, compiles{0}, compile_failures{0},
      compile_ns{0}, corrupt_entries{0}, untrusted_entries{0}, store_failures{0}, declined{0},
      evictions{0}, bypass_disk_off{0}, memory_evictions{0};

  // Evicts the least recently used finished entries of `compiled` (and
  // their place in `served`) down to options.max_memory_entries. Only the
  // JIT's references go: the runtime and any call in flight hold their own
  // shared_ptr, so a module is unloaded once the last of them lets go, never
  // under a running call. A compile in flight is not evicted. Holds `mutex`.
  void trim_memory();

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
  std::shared_ptr<CpuSpecialization> load(std::vector<std::byte> image,
                                          compiler::CpuLoweredGraph plan, const std::string& label);
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
  if (!options.max_memory_entries) options.max_memory_entries = max_memory_entries_from_env();
  if (options.disk_cache) {
    if (options.cache_dir.empty()) options.cache_dir = default_cache_dir();
    if (!options.cache_dir.empty()) {
      try {
        // Checked (and made) before anything is read from it or written to it.
        options.cache_dir = detail::open_cache_dir(options.cache_dir);
        support::MacKey key = detail::load_cache_key(options.cache_dir);
        impl_->disk.emplace(options.cache_dir, key);
        support::secure_zero(key);
        detail::reclaim_scratch_dirs();
      } catch (const detail::CacheDirUnavailable& e) {
        // Slower, not broken (bypass_disk_off); a directory that fails its
        // checks is a CacheDirError, not this.
        std::fprintf(stderr, "%s; the disk cache is off\n", e.what());
      }
    }
  }
  if (!impl_->disk) options.cache_dir.clear();
  impl_->options = std::move(options);
}

FallbackJit::~FallbackJit() = default;

const fs::path& FallbackJit::cache_dir() const noexcept { return impl_->options.cache_dir; }
const std::string& FallbackJit::cxx() const noexcept { return impl_->options.cxx; }

std::optional<size_t> FallbackJit::max_adopted_entries() const {
  return impl_->options.max_memory_entries;
}

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
  c.untrusted_entries = i.untrusted_entries.load(std::memory_order_relaxed);
  c.store_failures = i.store_failures.load(std::memory_order_relaxed);
  c.declined = i.declined.load(std::memory_order_relaxed);
  c.evictions = i.evictions.load(std::memory_order_relaxed);
  c.bypass_disk_off = i.bypass_disk_off.load(std::memory_order_relaxed);
  c.memory_evictions = i.memory_evictions.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(impl_->mutex);
    c.memory_entries = i.compiled.size();
    c.graph_irs = i.graphs.size();
  }
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
    if (auto it = graphs.find(id); it != graphs.end()) {
      recent_graphs.splice(recent_graphs.begin(), recent_graphs, it->second.recency);
      return it->second.graph;
    }
  }
  const fb::Manifest& m = r.package.manifest();
  const fb::GraphEntry* entry =
      m.graphs() ? m.graphs()->LookupByKey(std::string(r.graph).c_str()) : nullptr;
  if (entry == nullptr) {
    throw Error(ErrorCode::graph_not_found,
                "kiln: JIT: the package has no graph '" + std::string(r.graph) + "'");
  }
  std::shared_ptr<const ir::Graph> g;
  try {
    g = std::make_shared<const ir::Graph>(compiler::ir_from_fb(*entry));
  } catch (const compiler::IrFormatError& e) {
    throw PackageError(ErrorCode::package_corrupt,
                       "kiln: graph '" + entry->name()->str() + "': cannot JIT: " + e.what());
  }
  std::lock_guard lock(mutex);
  // Another thread may have read the same graph meanwhile: one copy stays.
  const auto [it, inserted] = graphs.try_emplace(id, GraphIr{std::move(g), {}});
  if (inserted) {
    recent_graphs.push_front(id);
    it->second.recency = recent_graphs.begin();
  }
  std::shared_ptr<const ir::Graph> result = it->second.graph;
  while (options.max_memory_entries && graphs.size() > *options.max_memory_entries) {
    graphs.erase(recent_graphs.back());
    recent_graphs.pop_back();
  }
  return result;
}

std::shared_ptr<CpuSpecialization> FallbackJit::Impl::load(std::vector<std::byte> image,
                                                           compiler::CpuLoweredGraph plan,
                                                           const std::string& label) {
  auto c = std::make_shared<CpuSpecialization>();
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
    std::shared_ptr<CpuSpecialization> c =
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
  if (found == detail::DiskCache::Lookup::untrusted) {
    untrusted_entries.fetch_add(1, std::memory_order_relaxed);
    record({{"untrusted_entries", 1}});
    if (::kiln::detail::log_topic_enabled("cache")) {
      std::fprintf(stderr,
                   "kiln: cache entry of graph '%s' key %s in '%s' failed its MAC check (not "
                   "written with this cache's key): removed, not loaded; compiling\n",
                   g.name.c_str(), key.c_str(), disk->dir().c_str());
    }
    return std::nullopt;
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
      try {
        const uint64_t evicted = prune_cache(disk->dir(), *options.max_size);
        evictions.fetch_add(evicted, std::memory_order_relaxed);
        if (evicted > 0) outcome["evictions"] = evicted;
      } catch (const CacheDirError& e) {
        // Its tag was removed since the JIT opened it: nothing is pruned.
        if (::kiln::detail::log_topic_enabled("cache")) std::fprintf(stderr, "%s\n", e.what());
      }
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
      i.recent.push_front(id);
      i.compiled.emplace(id, Impl::MemoryEntry{pending, package_id, i.recent.begin()});
      leader = true;
    } else {
      pending = it->second.result;
      i.recent.splice(i.recent.begin(), i.recent, it->second.recency);
    }
  }
  if (leader) {
    Impl::Served built;
    try {
      if (cuda) {
        built.cuda = i.build_cuda(*g, spec_values, request, cuda_arch, aligned16);
      } else {
        built.cpu = i.build(*g, spec_values, request.cpu_arch);
      }
    } catch (...) {
      // Errors are not cached: the next call tries again. Waiters see this
      // call's error. (A pending entry is never evicted: this one is ours.)
      {
        std::lock_guard lock(i.mutex);
        const auto it = i.compiled.find(id);
        i.recent.erase(it->second.recency);
        i.compiled.erase(it);
      }
      promise.set_exception(std::current_exception());
      throw;
    }
    promise.set_value(built);
    std::lock_guard lock(i.mutex);
    i.served[package_id].push_back(std::move(built));
    i.trim_memory();
  }
  const Impl::Served compiled = pending.get();  // a waiter rethrows the leader's error
  if (!leader) i.memory_hits.fetch_add(1, std::memory_order_relaxed);
  return compiled.specialization();
}

void FallbackJit::Impl::trim_memory() {
  if (!options.max_memory_entries) return;
  for (auto r = recent.end();
       compiled.size() > *options.max_memory_entries && r != recent.begin();) {
    --r;
    const auto it = compiled.find(*r);
    if (it->second.result.wait_for(std::chrono::seconds(0)) != std::future_status::ready) continue;
    const std::shared_ptr<const JitSpecialization> evicted =
        it->second.result.get().specialization();
    std::vector<Served>& held = served[it->second.package_id];
    std::erase_if(held, [&](const Served& s) { return s.specialization() == evicted; });
    if (held.empty()) served.erase(it->second.package_id);
    compiled.erase(it);
    r = recent.erase(r);
    memory_evictions.fetch_add(1, std::memory_order_relaxed);
  }
}

size_t FallbackJit::export_compiled(const PackageReader& package, const fs::path& path) {
  const KilnPackageHeader& header = package.header();
  const std::string package_id = compiler::Hash128{header.checksum_lo, header.checksum_hi}.hex();
  std::vector<Impl::Served> served;
  {
    std::lock_guard lock(impl_->mutex);
    if (auto it = impl_->served.find(package_id); it != impl_->served.end()) served = it->second;
  }
  return detail::write_delta_package(package.manifest(), served, path, impl_->options.cxx);
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
