/// @file
/// The Kiln runtime: open a package, pick a graph, call it with DLPack
/// tensors. Guards choose a precompiled specialization per call; a miss
/// follows the stance (see docs/runtime.md). This is what an application and
/// a generated header include, so it includes neither the package reader
/// (kiln/package_reader.h, with the generated FlatBuffers code) nor the JIT's
/// interface (kiln/jit.h); tests/public_header checks it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <dlpack/dlpack.h>

#include "kiln/cuda_devices.h"
#include "kiln/device_allocator.h"
#include "kiln/dtype.h"
#include "kiln/error.h"
#include "kiln/limits.h"
#include "kiln/tensor_view.h"

/// Kiln: the runtime (Package, Graph, TensorView, Error), the graph API
/// (kiln/graph.h) and the JIT hook (kiln/jit.h).
namespace kiln {

// Package::reader() returns one by reference. Its header includes the
// generated FlatBuffers code, which an application and a generated header
// never need: a caller that reads the manifest includes kiln/package_reader.h.
class PackageReader;

/// What a call does when no specialization of the package fits it.
enum class Stance : uint8_t {
  fallback,           ///< compile what is missing (needs a JitCompiler), else NoSpecializationError
  fail_on_recompile,  ///< throw RecompileError naming every failed guard
};

/// How Package::open and its siblings open a package.
struct OpenOptions {
  /// Initial stance; KILN_STANCE overrides it.
  Stance stance = Stance::fallback;
  int num_threads = 0;  ///< CPU launch threads, the caller's included; 0 = hardware_concurrency
  DeviceAllocator* device_allocator = nullptr;  ///< CUDA temps; nullptr: stream_ordered_allocator()
  /// Sync the stream after every CUDA launch so a fault names its kernel;
  /// also set by KILN_CUDA_SYNC=1. Slow: for debugging.
  bool cuda_synchronize = false;
  /// Record the shapes of every call into this .kprof file (docs/profile.md),
  /// merged into what it holds when the Package closes or write_profile()
  /// runs. KILN_PROFILE_OUT, when set and not empty, overrides it. Empty: no
  /// recording. (`= {}`: an initializer such as {.stance = ...} may leave it
  /// out without -Wmissing-field-initializers.)
  std::filesystem::path profile_out = {};
  /// Public keys a package must be signed by (docs/runtime.md, "Signed
  /// packages"), each the text of a .pub file `kiln keygen` wrote
  /// ("kiln-ed25519-public <64 hex digits>[ comment]"), so an application
  /// can build its key in. Together with trusted_key_files and the .pub files
  /// KILN_TRUSTED_KEYS lists: when any key is given, open() refuses an
  /// unsigned package and one signed by another key (UntrustedPackageError);
  /// a malformed key is Error(invalid_argument), an unreadable file Error(io).
  /// With none, any package opens. Either way a signature that does not
  /// verify is refused.
  std::vector<std::string> trusted_keys = {};
  /// Paths of .pub files, trusted as trusted_keys are.
  std::vector<std::filesystem::path> trusted_key_files = {};
  /// Caps on the package's file size and on what its blobs decompress to,
  /// checked before anything that large is allocated (kiln/limits.h):
  /// PackageError(resource_limit) over one.
  PackageLimits limits = {};
};

/// The number of guard kinds: one slot per kiln.fb.GuardKind in
/// GraphCounters::misses_by_reason.
inline constexpr size_t kGuardKindCount = 11;

/// A snapshot of a graph's counters. Every call counts once among hits,
/// jit_hits and misses.
struct GraphCounters {
  /// Calls made (a call refused for bad arguments does not count).
  uint64_t calls = 0;
  uint64_t hits = 0;      ///< ran a specialization of the package
  uint64_t jit_hits = 0;  ///< ran one the JIT compiled earlier, without asking the JIT
  uint64_t misses = 0;    ///< matched neither: handed to the JIT, or an error
  /// Misses the JIT served (compiled now, or from its memory or disk cache).
  uint64_t jit_served = 0;
  /// JIT specializations the graph dropped to stay within
  /// JitCompiler::max_adopted_entries() (the least recently used first): a
  /// later call with their shapes asks the JIT again.
  uint64_t jit_evictions = 0;
  /// For each miss, the kinds of guard the closest specialization failed
  /// (each kind counted once per miss), indexed by kiln.fb.GuardKind.
  uint64_t misses_by_reason[kGuardKindCount] = {};
};

namespace detail {
struct PackageState;
struct GraphFactory;
}  // namespace detail

/// A graph of an open package. Owned by the Package; references stay valid
/// for the Package's life (moves included). Calls are thread-safe.
///
/// CUDA: the runtime opens libcuda with dlopen when a call first meets a
/// CUDA tensor, and runs every kernel in the device's primary context (the
/// one the CUDA runtime and PyTorch use): it retains that context, makes it
/// current for the duration of a call unless it already is, and releases it
/// when the package closes.
class Graph {
 public:
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  /// The graph's name.
  std::string_view name() const;
  /// How many inputs call() takes.
  size_t num_inputs() const;
  /// How many outputs call() takes.
  size_t num_outputs() const;

  /// Runs the graph: `inputs` in the graph's declaration order, then
  /// `outputs`, which the caller allocates (contiguous, in the dtypes and
  /// shapes the graph declares, each symbol at the value the inputs give
  /// it; a reduction over every axis is rank 0). Guards pick the first
  /// specialization that fits (docs/runtime.md); a miss follows the stance.
  /// All tensors are on the CPU, or all on one CUDA device, where the call
  /// is enqueued on `stream` (a CUstream of the device's primary context;
  /// nullptr: the legacy default stream) and returns without waiting;
  /// `stream` is ignored on the CPU.
  /// @throws Error(invalid_argument) for a wrong tensor count, a null tensor,
  ///   null data, tensors on two CUDA devices, or an output that overlaps an
  ///   input or another output (kernels do not run in place).
  /// @throws RecompileError (stance fail_on_recompile) or NoSpecializationError
  ///   (no JIT registered, or it declined) when no specialization fits; each
  ///   names the guards that failed, expected against actual.
  /// @throws CudaError when a CUDA launch fails; Error(cuda_unavailable)
  ///   without a driver; Error(kernel_load_failed) when no target of the
  ///   package runs on this CPU or device; Error(library_unavailable) when a
  ///   gemm needs cuBLASLt and it cannot be loaded.
  void call(std::span<const DLTensor* const> inputs, std::span<const DLTensor* const> outputs,
            void* stream = nullptr);
  /// call() with TensorViews: `g.call({TensorView(x, f32, {n, 64})}, {TensorView(y, f32, {n,
  /// 64})})`.
  /// @throws Error(invalid_argument) for more than kMaxTensors tensors, and what the other call()
  /// throws.
  void call(std::initializer_list<TensorView> inputs, std::initializer_list<TensorView> outputs,
            void* stream = nullptr);

  /// The name of the specialization a call with these tensors would run
  /// ("general", "n=16", or a JIT-compiled one already kept), or throws like
  /// call() would for a miss (without consulting a JIT). Launches nothing
  /// and counts no call. The view lives as long as the package, even once
  /// a JIT-compiled specialization is evicted.
  std::string_view select(std::span<const DLTensor* const> inputs,
                          std::span<const DLTensor* const> outputs);

  /// A snapshot of this graph's counters.
  GraphCounters counters() const;

 private:
  friend struct detail::GraphFactory;
  struct Impl;
  explicit Graph(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// An open package: its graphs, ready to call. Move-only; thread-safe to call into.
class Package {
 public:
  /// Reads and verifies the package file at `path` (PackageReader::open_file),
  /// then applies the trust policy (OpenOptions::trusted_keys) before any
  /// kernel is loaded.
  /// @throws Error(io) when the file cannot be read; PackageError when its bytes are not a
  /// valid package (bad magic, version, sizes, checksum, FlatBuffers verifier, unknown
  /// target, or a graph over kMaxSymbols or kMaxTensors: package_corrupt), or are over
  /// OpenOptions::limits (resource_limit); UntrustedPackageError when the trust policy
  /// refuses it; Error(invalid_argument) or Error(io) for a trusted key that is malformed
  /// or cannot be read. Every function of Package and Graph throws kiln::Error only:
  /// running out of memory is Error(resource_limit).
  static Package open(const std::filesystem::path& path, const OpenOptions& options = {});
  /// Opens a package held in memory, copying the bytes; throws as open().
  static Package open_memory(std::span<const std::byte> bytes, const OpenOptions& options = {});
  /// Opens a package without copying it: the bytes must outlive the
  /// Package (static data; a generated loaded_package() opens its embedded
  /// package so). Throws as open().
  static Package open_embedded(std::span<const std::byte> bytes, const OpenOptions& options = {});

  /// The graph named `name`, owned by the Package.
  /// @throws Error(graph_not_found) listing the graphs the package has.
  Graph& graph(std::string_view name);
  /// The package's graph names, sorted (the manifest's order); views into the package.
  std::vector<std::string_view> graph_names() const;

  /// Writes the specializations the registered JIT compiled for this
  /// package as a delta package, for `kiln merge` (the hot-load of what
  /// production compiled); returns how many. Error(invalid_argument) when no
  /// JIT is registered.
  size_t export_compiled(const std::filesystem::path& path) const;

  /// Changes the stance for later calls of every graph; thread-safe.
  void set_stance(Stance stance);
  /// The current stance.
  Stance stance() const;

  /// With a profile being recorded (OpenOptions::profile_out or
  /// KILN_PROFILE_OUT), adds the counts recorded so far to the file and
  /// starts counting afresh; without, does nothing. Throws Error(io), or
  /// Error(profile_malformed) when the file is not a profile; the counts are
  /// then kept. The destructor writes what is left, reporting a failure on
  /// stderr.
  void write_profile();

  /// The verified package bytes and manifest (what `kiln inspect` reads);
  /// include kiln/package_reader.h to use it.
  const PackageReader& reader() const;

  /// Moves; Graph references stay valid.
  Package(Package&&) noexcept;
  /// Moves; references into the replaced package dangle.
  Package& operator=(Package&&) noexcept;
  ~Package();

 private:
  explicit Package(std::unique_ptr<detail::PackageState> state);
  std::unique_ptr<detail::PackageState> state_;
};

}  // namespace kiln
