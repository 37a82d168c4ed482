// The Kiln runtime: open a package, pick a graph, call it with DLPack
// tensors. Guards choose a precompiled specialization per call; a miss
// follows the stance (see docs/runtime.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include <dlpack/dlpack.h>

#include "kiln/device_allocator.h"
#include "kiln/dtype.h"
#include "kiln/error.h"
#include "kiln/jit.h"
#include "kiln/package_reader.h"
#include "kiln/tensor_view.h"

namespace kiln {

enum class Stance : uint8_t {
  fallback,           // compile what is missing (needs a JitCompiler), else NoSpecializationError
  fail_on_recompile,  // throw RecompileError naming every failed guard
};

struct OpenOptions {
  Stance stance = Stance::fallback;
  int num_threads = 0;  // CPU launch threads, the caller's included; 0 = hardware_concurrency
  DeviceAllocator* device_allocator = nullptr;  // CUDA temps; nullptr: stream_ordered_allocator()
  // Sync the stream after every CUDA launch so a fault names its kernel;
  // also set by KILN_CUDA_SYNC=1. Slow: for debugging.
  bool cuda_synchronize = false;
  // Record the shapes of every call into this .kprof file (docs/profile.md),
  // merged into what it holds when the Package closes or write_profile()
  // runs. KILN_PROFILE_OUT, when set and not empty, overrides it. Empty: no
  // recording.
  std::filesystem::path profile_out;
};

// One slot per kiln.fb.GuardKind.
inline constexpr size_t kGuardKindCount = 11;

// A snapshot of a graph's counters. Every call counts once among hits,
// jit_hits and misses.
struct GraphCounters {
  uint64_t calls = 0;
  uint64_t hits = 0;      // ran a specialization of the package
  uint64_t jit_hits = 0;  // ran one the JIT compiled earlier, without asking the JIT
  uint64_t misses = 0;    // matched neither: handed to the JIT, or an error
  // Misses the JIT served (compiled now, or from its memory or disk cache).
  uint64_t jit_served = 0;
  // For each miss, the kinds of guard the closest specialization failed
  // (each kind counted once per miss), indexed by kiln.fb.GuardKind.
  uint64_t misses_by_reason[kGuardKindCount] = {};
};

namespace detail {
struct PackageState;
struct GraphFactory;
}  // namespace detail

// A graph of an open package. Owned by the Package; references stay valid
// for the Package's life (moves included). Calls are thread-safe.
class Graph {
 public:
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  std::string_view name() const;
  size_t num_inputs() const;
  size_t num_outputs() const;

  // Throws Error(invalid_argument) for a wrong tensor count, a null tensor or
  // null data; RecompileError or NoSpecializationError when no
  // specialization fits.
  void call(std::span<const DLTensor* const> inputs, std::span<const DLTensor* const> outputs,
            void* stream = nullptr);
  void call(std::initializer_list<TensorView> inputs, std::initializer_list<TensorView> outputs,
            void* stream = nullptr);

  // The specialization a call with these tensors would run, or throws like
  // call() would (without consulting a JIT). Launches nothing.
  std::string_view select(std::span<const DLTensor* const> inputs,
                          std::span<const DLTensor* const> outputs);

  GraphCounters counters() const;

 private:
  friend struct detail::GraphFactory;
  struct Impl;
  explicit Graph(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Package {
 public:
  static Package open(const std::filesystem::path& path, const OpenOptions& options = {});
  // Copies the bytes.
  static Package open_memory(std::span<const std::byte> bytes, const OpenOptions& options = {});
  // Borrows the bytes, which must outlive the Package (static data).
  static Package open_embedded(std::span<const std::byte> bytes, const OpenOptions& options = {});

  // Throws Error(graph_not_found) listing the graphs the package has.
  Graph& graph(std::string_view name);
  std::vector<std::string_view> graph_names() const;

  // Writes the specializations the registered JIT compiled for this
  // package as a delta package, for `kiln merge` (the hot-load of what
  // production compiled); returns how many. Error(invalid_argument) when no
  // JIT is registered.
  size_t export_compiled(const std::filesystem::path& path) const;

  void set_stance(Stance stance);
  Stance stance() const;

  // With a profile being recorded (OpenOptions::profile_out or
  // KILN_PROFILE_OUT), adds the counts recorded so far to the file and
  // starts counting afresh; without, does nothing. Throws Error(io), or
  // Error(profile_malformed) when the file is not a profile; the counts are
  // then kept. The destructor writes what is left, reporting a failure on
  // stderr.
  void write_profile();

  const PackageReader& reader() const;

  Package(Package&&) noexcept;
  Package& operator=(Package&&) noexcept;
  ~Package();

 private:
  explicit Package(std::unique_ptr<detail::PackageState> state);
  std::unique_ptr<detail::PackageState> state_;
};

}  // namespace kiln
