// What graph_plan.cpp, graph_dispatch.cpp and graph_execute.cpp share: a
// specialization as compiled from the manifest (its guards, buffers and
// launches), where a call runs, and Graph::Impl, the graph they work on.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "guard_program.h"
#include "kiln/jit.h"
#include "kiln/runtime.h"
#include "kiln/runtime_internal/gemm_plan.h"
#include "kiln/runtime_internal/size_expr.h"
#include "package_state.h"
#include "selection_table.h"

namespace kiln {
namespace detail {

struct CompiledBuffer {
  fb::BufferRole role;
  uint32_t index;
  size_t element_size;
  SizeProgram numel;
  bool has_numel;  // the plan declares numel (temps always do)
};

struct CompiledLaunch {
  uint32_t kernel;
  std::vector<uint32_t> buffers;
  SizeProgram work_items;
  SizeProgram item_cost;
  KilnCpuKernelFn fn = nullptr;  // set once, under Graph::Impl::kernels_once
  // CUDA: grid as programs over the symbols, block, dynamic shared memory.
  std::array<SizeProgram, 3> grid;
  std::array<uint32_t, 3> block = {1, 1, 1};
  uint32_t shared_bytes = 0;
  std::string kernel_name;  // for a library call: "launch 1 (gemm)"
  // Set: a library call (kernel is kNoKernel), run through cuBLASLt.
  std::optional<GemmProgram> gemm;
};

struct CompiledSpecialization {
  std::string name;
  uint32_t target;
  bool cuda = false;
  GuardProgram guards;
  std::vector<CompiledBuffer> buffers;
  // Per plan buffer: its tensor (inputs, then outputs), or -1 for a temp.
  std::vector<int32_t> buffer_tensor;
  std::vector<uint32_t> temps;  // the plan buffers that are temps
  std::vector<CompiledLaunch> launches;
  bool has_temps = false;
  bool has_gemm = false;  // a launch is a gemm: the call's workspace holds cuBLASLt's
  // Every symbol has a static value: validate_manifest() checked the plan's
  // sizes at it, so a call need not.
  bool sizes_checked_at_open = false;
  // Byte sizes for the overlap check: tensors whose size the guards fix as
  // one expression share a class, computed once per call; -1: read the
  // tensor's own shape.
  std::vector<int16_t> extent_class;
  std::vector<TensorExtent> extents;
};

// A specialization the JIT compiled for this graph: its guards and extents,
// built from the FlatBuffer it hands back; its kernels and plan are the
// JIT's, which runs it.
struct JitEntry {
  std::shared_ptr<const JitSpecialization> jit;
  CompiledSpecialization compiled;
  // The number of the call that last ran it (Graph::Impl::calls), for
  // least-recently-used eviction: a hit stores it without a lock.
  mutable std::atomic<uint64_t> last_use{0};
};

// Where a call runs: the CPU, or a CUDA device with its compute capability,
// and the specializations to try there.
struct CallDevice {
  bool cuda = false;
  int ordinal = 0;
  int compute_capability = 0;
  const SelectionTable* table = nullptr;
};

// The product of a tensor's (non-negative) dims, or -1 when it overflows.
int64_t element_count(const DLTensor& t);

}  // namespace detail

struct Graph::Impl {
  detail::PackageState* package = nullptr;
  const fb::GraphEntry* entry = nullptr;
  std::string name;
  size_t input_count = 0;
  size_t output_count = 0;
  detail::GraphNames names;
  std::vector<detail::CompiledSpecialization> specializations;
  // Indices of the specializations for the package's chosen CPU target, in
  // selection order, and their table.
  std::vector<uint32_t> cpu_candidates;
  detail::SelectionTable cpu_table;
  bool has_cpu_specializations = false;
  // The package targets this graph is built for (GraphEntry.targets; all
  // when absent), as text ("cpu:x86-64, cuda:sm_90").
  std::string targets_text;
  // Some package target is left out: errors then name the graph's targets.
  bool restricted = false;
  // The best of the graph's CPU targets this machine runs: the graph's own
  // choice, since GRAPH_TARGETS may leave it only lower levels.
  std::optional<uint32_t> cpu_target;
  std::string cpu_targets_text;
  // By package target: that CUDA target's specializations (none for CPU
  // targets), or nullopt where the graph is not built for the target, so a
  // call reads whether it is in the table it needs anyway. A device runs the
  // target the launcher chose for it.
  std::vector<std::optional<detail::SelectionTable>> cuda_tables;
  size_t symbol_count = 0;
  // No candidates: a CUDA call on a device no package target runs, handed
  // to the JIT.
  detail::SelectionTable empty_table;

  std::once_flag kernels_once;

  // What the JIT compiled for this graph, in the order it came; checked
  // after the package's own. At most JitCompiler::max_adopted_entries():
  // adopt() drops the least recently used past it, so a reader copies the
  // shared_ptr under the lock and holds it while the entry runs (its module
  // is never unloaded under a running call).
  mutable std::shared_mutex jit_mutex;
  std::vector<std::shared_ptr<const detail::JitEntry>> jit_entries;
  std::atomic<size_t> jit_entry_count{0};
  std::atomic<uint64_t> jit_evictions{0};
  // The names select() returned for JIT entries: a string_view it returns
  // lives as long as the package, evicted or not.
  std::mutex selected_jit_names_mutex;
  std::set<std::string, std::less<>> selected_jit_names;

  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> jit_hits{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> jit_served{0};
  std::array<std::atomic<uint64_t>, kGuardKindCount> misses_by_reason{};

  // graph_plan.cpp (also GraphFactory::make, which fills the fields above)
  // Keeps what the JIT returned (once, however many threads got it), first
  // run by call number `call`; drops the least recently used entries past
  // the JIT's max_adopted_entries().
  std::shared_ptr<const detail::JitEntry> adopt(std::shared_ptr<const JitSpecialization> jit,
                                                const JitCompiler& compiler, uint64_t call);

  // graph_dispatch.cpp
  // Graph::call() and Graph::select(), whose exceptions those translate.
  void call(std::span<const DLTensor* const> inputs, std::span<const DLTensor* const> outputs,
            void* stream);
  std::string_view select_name(std::span<const DLTensor* const> inputs,
                               std::span<const DLTensor* const> outputs);
  // The call's tensors, inputs then outputs, after checking their number.
  void gather(std::span<const DLTensor* const> inputs, std::span<const DLTensor* const> outputs,
              const DLTensor** tensors) const;
  // Throws invalid_argument for NULL tensors, bad shapes and NULL data of a
  // non-empty tensor. A call runs it before the guards, unless a pass of
  // the guards implies it (SelectionTable::covers_validation); then only
  // on a miss, or when a tensor that passed has NULL data.
  void validate(const DLTensor* const* tensors) const;
  detail::CallDevice device_of(const DLTensor* const* tensors) const;
  // Error(kernel_load_failed): the graph has CPU code, none of it for a
  // level this CPU runs.
  [[noreturn]] void throw_no_cpu_target() const;
  // Error(kernel_load_failed): the device runs `target`, which the graph is
  // not built for.
  [[noreturn]] void throw_not_built_for(const detail::CallDevice& device, uint32_t target) const;
  // The chosen specialization, or nullptr on a miss; throws like validate().
  const detail::CompiledSpecialization* select(const DLTensor* const* tensors, int64_t* symbols,
                                               const detail::CallDevice& device) const;
  // A JIT-compiled specialization whose guards pass, or nullptr.
  std::shared_ptr<const detail::JitEntry> select_jit(const DLTensor* const* tensors,
                                                     int64_t* symbols,
                                                     const detail::CallDevice& device) const;
  // Generated kernels take their pointers as __restrict: an output that
  // shares memory with another tensor would give a silently wrong answer.
  void check_no_overlap(const detail::CompiledSpecialization& spec, const DLTensor* const* tensors,
                        const int64_t* symbols) const;
  // Cold, as GuardProgram::collect_failures: a miss only.
  [[gnu::cold]] std::vector<GuardFailure> explain_miss(const DLTensor* const* tensors, bool count,
                                                       const detail::CallDevice& device);
  // KILN_LOG=recompiles: one stderr line per failed guard of a miss.
  void log_recompile(const std::vector<GuardFailure>& failures) const;
  [[noreturn]] void throw_miss(std::vector<GuardFailure> failures) const;
  // The miss path under Stance::fallback with a JIT registered.
  void serve_by_jit(JitCompiler& jit, const DLTensor* const* tensors,
                    std::span<const DLTensor* const> inputs,
                    std::span<const DLTensor* const> outputs, const detail::CallDevice& device,
                    void* stream, std::vector<GuardFailure> failures, uint64_t call);

  // graph_execute.cpp
  // The plan's sizes against this call's tensors, before its first launch:
  // each input and output buffer's declared numel is its tensor's element
  // count, and no CPU launch has more work items than the largest buffer it
  // binds has elements. PackageError(package_corrupt) otherwise: a plan that
  // lies about its sizes must not reach a kernel. `temp_numel`: each temp's
  // element count, as place_buffers() evaluated it.
  void check_plan_sizes(const detail::CompiledSpecialization& spec, const DLTensor* const* tensors,
                        const int64_t* symbols, const int64_t* temp_numel) const;
  // The CPU candidates' kernel functions, looked up once, by the first CPU
  // call (run()).
  void resolve_kernels();
  // Inputs and outputs point at the caller's data; returns the
  // size of one workspace holding every temp, their offsets in it and their
  // element counts (each size evaluated once, for check_plan_sizes() too).
  size_t place_buffers(const detail::CompiledSpecialization& spec, const DLTensor* const* tensors,
                       const int64_t* symbols, void** buffers, size_t* temp_offsets,
                       int64_t* temp_numel) const;
  void run(const detail::CompiledSpecialization& spec, const DLTensor* const* tensors,
           const int64_t* symbols);
  // `symbols` is not const: the kernel parameters point into it.
  void run_cuda(const detail::CompiledSpecialization& spec, const DLTensor* const* tensors,
                int64_t* symbols, const detail::CallDevice& device, void* stream);
  // A library call's launch: the gemm evaluated for the call, each operand
  // held to what its buffer holds (gemm_operand_elements).
  void run_gemm(const detail::CompiledSpecialization& spec, const detail::CompiledLaunch& launch,
                const DLTensor* const* tensors, const int64_t* symbols, void* const* buffers,
                void* workspace, size_t workspace_bytes, const detail::CallDevice& device,
                void* stream);
  void run_jit(const detail::JitEntry& entry, std::span<const DLTensor* const> inputs,
               std::span<const DLTensor* const> outputs, const int64_t* symbols,
               const detail::CallDevice& device, void* stream);
};

}  // namespace kiln
