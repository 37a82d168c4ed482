// The fallback JIT: serves a guard miss under Stance::fallback by compiling
// a specialization for the call's shapes (static for the first sizes of each
// symbol, dynamic after JitOptions::dynamic_after of them) from the IR in the
// package, with the generator's codegen: CPU code with clang++ for the
// package's CPU level, CUDA code with NVRTC for the device. Compiled code is
// kept in memory (one compile per key, however many threads miss it at
// once) and in an on-disk cache shared by processes; the runtime keeps what
// it returns (up to the same cap), and Package::export_compiled ships it as
// a delta package.
//
//   kiln::jit::install();           // or: FallbackJit jit; kiln::set_jit_compiler(&jit);
//   graph.call(...);                // a miss compiles once, later calls are jit hits
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "kiln/jit.h"
#include "kiln/jit/jit_error.h"

namespace kiln::jit {

// Every member has an initializer, so {.disk_cache = false} may leave the
// rest out without -Wmissing-field-initializers.
struct JitOptions {
  // clang++ to run. Empty: $KILN_CLANGXX, else the clang++ this build found.
  std::string cxx = {};
  // Empty: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else $HOME/.cache/kiln.
  // Made 0700 where missing and checked before use (docs/jit.md): one that
  // fails the checks makes the constructor throw CacheDirError; one that
  // cannot be made turns the disk cache off, with a line on stderr.
  std::filesystem::path cache_dir = {};
  // false: memory only (nothing is read from or written to disk).
  bool disk_cache = true;
  // Part of every key, so builds that must not share entries do not. Empty:
  // $KILN_CACHE_TAG.
  std::string tag = {};
  // Static specializations per symbol: the first this many distinct sizes of
  // a symbol compile with the size fixed; any further size compiles (once) a
  // specialization that reads the size at run time. 0: always dynamic.
  size_t dynamic_after = 2;
  // Cap on the disk cache's entries, in bytes: after each store the least
  // recently used entries are removed down to it. nullopt:
  // $KILN_CACHE_MAX_SIZE ("500M"), else no cap.
  std::optional<uint64_t> max_size = {};
  // Cap on the specializations kept loaded in memory (a long-running server
  // meets ever new shapes): past it the least recently used is evicted
  // (memory_evictions) and a later request for it is a disk hit or a
  // compile. The runtime caps what each graph adopted at the same count
  // (max_adopted_entries, GraphCounters::jit_evictions); a call in flight
  // holds its own reference, so none is unloaded under a running call.
  // The graphs' IR the JIT read from packages is held up to the same count.
  // nullopt: $KILN_CACHE_MAX_MEMORY_ENTRIES, else no cap.
  std::optional<size_t> max_memory_entries = {};
};

// Every outcome of a request the JIT sees; each request counts once among
// memory_hits, disk_hits, compiles, compile_failures and declined.
struct JitCounters {
  uint64_t requests = 0;
  uint64_t memory_hits = 0;       // compiled earlier in this process
  uint64_t disk_hits = 0;         // loaded from the disk cache
  uint64_t compiles = 0;          // compiled now (includes the ones stored)
  uint64_t compile_failures = 0;  // JitCompileError: nothing was cached
  uint64_t compile_ns = 0;        // wall time of the successful compiles, lowering included
  uint64_t corrupt_entries = 0;   // disk entries that failed their checks: recompiled
  // Disk entries whose MAC is not this cache's key's (written or changed by
  // someone without it): never loaded, removed, recompiled.
  uint64_t untrusted_entries = 0;
  uint64_t store_failures = 0;    // compiled, but the disk entry could not be written
  uint64_t declined = 0;          // not a CPU call
  uint64_t evictions = 0;         // entries removed to keep the disk cache under its cap
  uint64_t memory_evictions = 0;  // specializations dropped to keep memory under its cap
  uint64_t memory_entries = 0;    // specializations held in memory now (not a count of events)
  uint64_t graph_irs = 0;  // graphs' IR held in memory now, as many as memory_entries at most
  // Requests that went around the disk cache, and why: it is off (no
  // directory, or JitOptions::disk_cache = false), the call is on a device
  // this JIT does not compile for (= declined), or the entry could not be
  // written (= store_failures).
  uint64_t bypasses = 0;
  uint64_t bypass_disk_off = 0;
  uint64_t bypass_unsupported_device = 0;
  uint64_t bypass_store_failed = 0;
};

class FallbackJit final : public JitCompiler {
 public:
  explicit FallbackJit(JitOptions options = {});
  ~FallbackJit() override;
  FallbackJit(const FallbackJit&) = delete;
  FallbackJit& operator=(const FallbackJit&) = delete;

  std::shared_ptr<const JitSpecialization> compile(const JitRequest& request) override;
  // The specializations compiled (or loaded from the disk cache) for
  // `package` in this process and still in memory (none evicted since,
  // JitOptions::max_memory_entries), as a delta package for `kiln merge`.
  size_t export_compiled(const PackageReader& package, const std::filesystem::path& path) override;
  // The resolved JitOptions::max_memory_entries: one cap for the JIT's
  // memory and each graph's adopted specializations.
  std::optional<size_t> max_adopted_entries() const override;

  JitCounters counters() const;
  // Where entries go; empty when the disk cache is off.
  const std::filesystem::path& cache_dir() const noexcept;
  // The clang++ this JIT runs.
  const std::string& cxx() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Makes a process-wide FallbackJit and registers it (set_jit_compiler). A second
// call registers a new one; earlier ones stay alive, since a call in flight
// may still use them.
FallbackJit& install(JitOptions options = {});

}  // namespace kiln::jit
