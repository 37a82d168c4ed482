// Test helper: real CPU packages without the codegen. A hand-written kernel
// source (following schemas/include/kiln/abi/cpu_kernel.h) is compiled with
// the clang++ CMake found into a shared object, and put into a package with a
// hand-built manifest by the real PackageWriter.
//
// The graphs: scale_add(x: f32[n, 64], w: f32[64]) -> y: f32[n, 64], with
// y = 2 * x + w (broadcast over rows). "scale_add" runs one kernel over
// n * 64 work items; "scale_add_temp" runs two (t = 2 * x, then y = t + w)
// through a temp buffer. A graph with `record_chunks` has the same signature
// but its one kernel writes down how the launch was split instead (see
// kiln_test_record_rows).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/compiler/package_writer.h"
#include "kiln/runtime.h"

namespace kiln_test {

namespace fb = kiln::fb;

inline constexpr int64_t kRowWidth = 64;

inline const char* kScaleAddKernelSource = R"(
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>
// Added to every y: a package built with another Y_SHIFT computes another
// answer from the same manifest, so a test can tell whose kernels ran.
#ifndef Y_SHIFT
#define Y_SHIFT 0.0f
#endif
extern "C" {
typedef struct KilnCpuKernelArgs {
  void* const* buffers;
  const int64_t* symbols;
} KilnCpuKernelArgs;

__attribute__((visibility("default"))) int kiln_cpu_abi_version(void) { return ABI_VERSION; }

__attribute__((visibility("default")))
void kiln_test_scale_add(const KilnCpuKernelArgs* a, int64_t begin, int64_t end) {
  const float* x = (const float*)a->buffers[0];
  const float* w = (const float*)a->buffers[1];
  float* y = (float*)a->buffers[2];
  for (int64_t i = begin; i < end; ++i) y[i] = 2.0f * x[i] + w[i % 64] + Y_SHIFT;
}

__attribute__((visibility("default")))
void kiln_test_double(const KilnCpuKernelArgs* a, int64_t begin, int64_t end) {
  const float* x = (const float*)a->buffers[0];
  float* t = (float*)a->buffers[1];
  for (int64_t i = begin; i < end; ++i) t[i] = 2.0f * x[i];
}

// One work item is one row: exercises item_cost.
__attribute__((visibility("default")))
void kiln_test_add_row(const KilnCpuKernelArgs* a, int64_t begin, int64_t end) {
  const float* t = (const float*)a->buffers[0];
  const float* w = (const float*)a->buffers[1];
  float* y = (float*)a->buffers[2];
  for (int64_t r = begin; r < end; ++r)
    for (int64_t c = 0; c < 64; ++c) y[r * 64 + c] = t[r * 64 + c] + w[c] + Y_SHIFT;
}

// One work item is one row of y, read as int32: {begin, end, thread id,
// times written} of the call that wrote it, so a test sees every chunk a
// launch made and which thread ran it. x, read as int32, is the launch's
// meeting point: x[0] a call number the test sets (nonzero, new per launch),
// x[1] the threads that entered, x[2] set once they stopped waiting. The first
// chunks wait (5 s at most) until a second thread has entered: a launcher
// that hands chunks to its pool shows two threads even when the OS is slow to
// wake a worker, and one that runs them all on the caller waits once and
// shows one.
static __thread int32_t kiln_test_last_call = 0;

__attribute__((visibility("default")))
void kiln_test_record_rows(const KilnCpuKernelArgs* a, int64_t begin, int64_t end) {
  int32_t* meet = (int32_t*)a->buffers[0];
  if (kiln_test_last_call != meet[0]) {
    kiln_test_last_call = meet[0];
    __atomic_fetch_add(&meet[1], 1, __ATOMIC_SEQ_CST);
  }
  for (int waited_ms = 0; __atomic_load_n(&meet[1], __ATOMIC_SEQ_CST) < 2 &&
                          !__atomic_load_n(&meet[2], __ATOMIC_SEQ_CST);
       ++waited_ms) {
    if (waited_ms == 5000) __atomic_store_n(&meet[2], 1, __ATOMIC_SEQ_CST);
    usleep(1000);
  }
  int32_t* y = (int32_t*)a->buffers[2];
  const int32_t thread = (int32_t)syscall(SYS_gettid);
  for (int64_t r = begin; r < end; ++r) {
    y[r * 64 + 0] = (int32_t)begin;
    y[r * 64 + 1] = (int32_t)end;
    y[r * 64 + 2] = thread;
    y[r * 64 + 3] += 1;
  }
}
}
)";

// Compiles `source` into a shared object and returns its bytes.
inline std::vector<uint8_t> compile_shared_object(const std::string& source,
                                                  const std::string& extra_flags = "") {
  char dir_template[] = "/tmp/kiln-test-XXXXXX";
  const char* dir = ::mkdtemp(dir_template);
  if (dir == nullptr) throw std::runtime_error("mkdtemp failed");
  const std::filesystem::path src = std::filesystem::path(dir) / "kernels.cpp";
  const std::filesystem::path so = std::filesystem::path(dir) / "kernels.so";
  std::ofstream(src) << source;
  const std::string command = std::string(KILN_TEST_CLANGXX) + " -O2 -shared -fPIC " + extra_flags +
                              " -o " + so.string() + " " + src.string();
  if (std::system(command.c_str()) != 0) {
    throw std::runtime_error("kernel compile failed: " + command);
  }
  std::ifstream in(so, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  return bytes;
}

// The scale_add kernels, compiled once per test binary.
inline const std::vector<uint8_t>& scale_add_shared_object() {
  static const std::vector<uint8_t> bytes =
      compile_shared_object(kScaleAddKernelSource, "-DABI_VERSION=1");
  return bytes;
}

// The same kernels with 1000 added to every y (y = 2 * x + w + 1000): in a
// package beside the default ones, the answer says which object ran.
inline constexpr float kShiftedY = 1000.0f;
inline const std::vector<uint8_t>& shifted_scale_add_shared_object() {
  static const std::vector<uint8_t> bytes =
      compile_shared_object(kScaleAddKernelSource, "-DABI_VERSION=1 -DY_SHIFT=1000.0f");
  return bytes;
}

inline std::unique_ptr<fb::SizeExprT> expr(std::vector<fb::ExprOp> ops) {
  auto e = std::make_unique<fb::SizeExprT>();
  e->ops = std::move(ops);
  return e;
}
inline fb::ExprOp constant(int64_t v) { return fb::ExprOp(fb::ExprOpKind::Const, v); }
inline fb::ExprOp symbol(int64_t s) { return fb::ExprOp(fb::ExprOpKind::Symbol, s); }
inline fb::ExprOp op(fb::ExprOpKind kind) { return fb::ExprOp(kind, 0); }
// n * 64
inline std::unique_ptr<fb::SizeExprT> n_times_width() {
  return expr({symbol(0), constant(kRowWidth), op(fb::ExprOpKind::Mul)});
}

inline std::unique_ptr<fb::GuardT> guard(fb::GuardKind kind, uint16_t tensor, uint16_t dim,
                                         int32_t sym, int64_t value, int64_t value2 = 0) {
  auto g = std::make_unique<fb::GuardT>();
  g->kind = kind;
  g->tensor = tensor;
  g->dim = dim;
  g->symbol = sym;
  g->value = value;
  g->value2 = value2;
  return g;
}

struct TestGraphOptions {
  std::string name = "scale_add";
  bool use_temp = false;                   // two launches through a temp buffer
  bool record_chunks = false;              // one launch of kiln_test_record_rows
  bool static_n8 = true;                   // a "n=8" specialization before "general"
  std::vector<int64_t> more_statics = {};  // "n=<v>" specializations after "n=8"
  int64_t n_min = 1;                       // general: n in [n_min, n_max]
  int64_t n_max = 1 << 24;
  int64_t alignment = 16;    // x.data alignment guard
  int64_t divisible_by = 1;  // general: n % divisible_by == 0 (1: no guard)
  uint32_t target = 0;
};

// Kernel indices in make_test_manifest(): one set per target.
inline constexpr uint32_t kKernelScaleAdd = 0, kKernelDouble = 1, kKernelAddRow = 2,
                          kKernelRecordRows = 3, kKernelsPerTarget = 4;

// `n` >= 0: the static specialization "n=<n>"; -1: "general".
inline std::unique_ptr<fb::SpecializationT> make_specialization(const TestGraphOptions& o,
                                                                int64_t n) {
  enum : uint16_t { X = 0, W = 1, Y = 2 };
  const bool is_static = n >= 0;
  auto spec = std::make_unique<fb::SpecializationT>();
  spec->name = is_static ? "n=" + std::to_string(n) : "general";
  spec->target = o.target;
  spec->symbol_values = {n};
  auto& g = spec->guards;
  for (uint16_t t : {X, W, Y}) {
    g.push_back(guard(fb::GuardKind::DType, t, 0, -1, static_cast<int64_t>(fb::DType::F32)));
    g.push_back(guard(fb::GuardKind::Device, t, 0, -1, 1));
  }
  g.push_back(guard(fb::GuardKind::Rank, X, 0, -1, 2));
  g.push_back(guard(fb::GuardKind::Rank, W, 0, -1, 1));
  g.push_back(guard(fb::GuardKind::Rank, Y, 0, -1, 2));
  g.push_back(guard(fb::GuardKind::DimSymbol, X, 0, 0, 0));
  g.push_back(guard(fb::GuardKind::DimConst, X, 1, -1, kRowWidth));
  g.push_back(guard(fb::GuardKind::DimConst, W, 0, -1, kRowWidth));
  g.push_back(guard(fb::GuardKind::DimSymbol, Y, 0, 0, 0));
  g.push_back(guard(fb::GuardKind::DimConst, Y, 1, -1, kRowWidth));
  if (is_static) {
    g.push_back(guard(fb::GuardKind::SymbolRange, 0, 0, 0, n, n));
  } else {
    g.push_back(guard(fb::GuardKind::SymbolRange, 0, 0, 0, o.n_min, o.n_max));
    if (o.divisible_by > 1) {
      g.push_back(guard(fb::GuardKind::SymbolDivisible, 0, 0, 0, o.divisible_by));
    }
  }
  for (uint16_t t : {X, W, Y}) g.push_back(guard(fb::GuardKind::Contiguous, t, 0, -1, 0));
  g.push_back(guard(fb::GuardKind::Alignment, X, 0, -1, o.alignment));

  spec->plan = std::make_unique<fb::LaunchPlanT>();
  auto& plan = *spec->plan;
  auto buffer = [](fb::BufferRole role, uint32_t index, std::unique_ptr<fb::SizeExprT> numel) {
    auto b = std::make_unique<fb::BufferDeclT>();
    b->role = role;
    b->index = index;
    b->dtype = fb::DType::F32;
    b->numel = std::move(numel);
    return b;
  };
  plan.buffers.push_back(buffer(fb::BufferRole::Input, 0, n_times_width()));
  plan.buffers.push_back(buffer(fb::BufferRole::Input, 1, expr({constant(kRowWidth)})));
  plan.buffers.push_back(buffer(fb::BufferRole::Output, 0, n_times_width()));
  const uint32_t kernel_base = o.target * kKernelsPerTarget;
  if (o.record_chunks) {
    // Rows as work items, each costing a row: chunks are whole rows.
    auto launch = std::make_unique<fb::KernelLaunchT>();
    launch->kernel = kernel_base + kKernelRecordRows;
    launch->buffers = {0, 1, 2};
    launch->work_items = expr({symbol(0)});
    launch->item_cost = expr({constant(kRowWidth)});
    plan.launches.push_back(std::move(launch));
  } else if (!o.use_temp) {
    auto launch = std::make_unique<fb::KernelLaunchT>();
    launch->kernel = kernel_base + kKernelScaleAdd;
    launch->buffers = {0, 1, 2};
    launch->work_items = n_times_width();
    launch->item_cost = expr({constant(1)});
    plan.launches.push_back(std::move(launch));
  } else {
    plan.buffers.push_back(buffer(fb::BufferRole::Temp, 0, n_times_width()));
    auto first = std::make_unique<fb::KernelLaunchT>();
    first->kernel = kernel_base + kKernelDouble;
    first->buffers = {0, 3};
    first->work_items = n_times_width();
    plan.launches.push_back(std::move(first));
    auto second = std::make_unique<fb::KernelLaunchT>();
    second->kernel = kernel_base + kKernelAddRow;
    second->buffers = {3, 1, 2};
    second->work_items = expr({symbol(0)});
    second->item_cost = expr({constant(kRowWidth)});
    plan.launches.push_back(std::move(second));
  }
  spec->key = std::make_unique<fb::Hash128>(is_static ? static_cast<uint64_t>(n) : 0x1, 0xabc);
  return spec;
}

inline std::unique_ptr<fb::GraphEntryT> make_graph(const TestGraphOptions& o) {
  auto g = std::make_unique<fb::GraphEntryT>();
  g->name = o.name;
  auto n = std::make_unique<fb::SymbolT>();
  n->name = "n";
  n->min = o.n_min;
  n->max = o.n_max;
  n->hot = {8};
  g->symbols.push_back(std::move(n));
  auto tensor = [](const char* name, std::vector<fb::Dim> dims) {
    auto t = std::make_unique<fb::TensorSpecT>();
    t->name = name;
    t->dtype = fb::DType::F32;
    t->dims = std::move(dims);
    return t;
  };
  g->inputs.push_back(tensor("x", {fb::Dim(0, 0), fb::Dim(kRowWidth, -1)}));
  g->inputs.push_back(tensor("w", {fb::Dim(kRowWidth, -1)}));
  g->outputs.push_back(tensor("y", {fb::Dim(0, 0), fb::Dim(kRowWidth, -1)}));
  g->structure_hash = std::make_unique<fb::Hash128>(0x1234, 0x5678);
  if (o.static_n8) g->specializations.push_back(make_specialization(o, 8));
  for (int64_t n : o.more_statics) g->specializations.push_back(make_specialization(o, n));
  g->specializations.push_back(make_specialization(o, -1));
  return g;
}

// Targets by name (default one CPU target); each target gets the four
// kernels, all in that target's shared-object blob.
inline fb::ManifestT make_test_manifest(const std::vector<TestGraphOptions>& graphs,
                                        const std::vector<std::string>& targets = {"cpu:x86-64"}) {
  fb::ManifestT m;
  for (uint32_t t = 0; t < targets.size(); ++t) {
    auto target = std::make_unique<fb::TargetT>();
    target->name = targets[t];
    const bool cpu = targets[t].rfind("cpu:", 0) == 0;
    target->device = cpu ? fb::DeviceKind::Cpu : fb::DeviceKind::Cuda;
    target->arch = targets[t].substr(targets[t].find(':') + 1);
    m.targets.push_back(std::move(target));
    for (const char* entry : {"kiln_test_scale_add", "kiln_test_double", "kiln_test_add_row",
                              "kiln_test_record_rows"}) {
      auto kernel = std::make_unique<fb::KernelT>();
      kernel->name = std::string(entry) + "@" + targets[t];
      kernel->entry = entry;
      kernel->target = t;
      kernel->blob = t;
      m.kernels.push_back(std::move(kernel));
    }
  }
  for (const TestGraphOptions& o : graphs) m.graphs.push_back(make_graph(o));
  m.provenance = std::make_unique<fb::ProvenanceT>();
  m.provenance->kiln_version = "0.1.0-test";
  m.provenance->compilers = {"clang++ (test)"};
  m.provenance->flags = {"-O2"};
  m.provenance->source_hash = std::make_unique<fb::Hash128>(1, 2);
  return m;
}

inline std::vector<kiln::compiler::BlobInput> test_blobs(size_t targets = 1,
                                                         const std::vector<uint8_t>* so = nullptr) {
  std::vector<kiln::compiler::BlobInput> blobs;
  for (uint32_t t = 0; t < targets; ++t) {
    blobs.push_back({fb::BlobKind::CpuSharedObject, t, so ? *so : scale_add_shared_object()});
  }
  return blobs;
}

inline std::vector<uint8_t> make_test_package(const std::vector<TestGraphOptions>& graphs = {{}}) {
  return kiln::compiler::write_package(make_test_manifest(graphs), test_blobs());
}

inline std::span<const std::byte> as_bytes(const std::vector<uint8_t>& v) {
  return std::as_bytes(std::span(v));
}

// How one launch of kiln_test_record_rows split its rows: the [begin, end)
// chunks it was called with and the threads that ran them. Every row must
// have been written exactly once, by the chunk that holds it.
struct Chunking {
  std::map<int64_t, int64_t> chunks;  // begin -> end
  std::set<int32_t> threads;
  int64_t rows_not_written_once = 0;
  int64_t rows_outside_their_chunk = 0;
};

// Calls a `record_chunks` graph over `rows` rows and reads back its
// Chunking. The buffers are made once: a call allocates nothing.
class ChunkRecorder {
 public:
  explicit ChunkRecorder(int64_t rows)
      : rows_(rows),
        meet_(static_cast<size_t>(rows * kRowWidth)),
        w_(kRowWidth),
        record_(meet_.size()),
        x_view_(meet_.data(), kiln::DType::f32, {rows, kRowWidth}),
        w_view_(w_.data(), kiln::DType::f32, {kRowWidth}),
        y_view_(record_.data(), kiln::DType::f32, {rows, kRowWidth}) {}

  void call(kiln::Graph& g) {
    static std::atomic<int32_t> calls{0};
    std::fill(meet_.begin(), meet_.begin() + 3, 0);  // x: the threads' meeting point
    meet_[0] = ++calls;
    std::fill(record_.begin(), record_.end(), 0);  // y: the record
    const DLTensor* in[] = {&x_view_.dl(), &w_view_.dl()};
    const DLTensor* out[] = {&y_view_.dl()};
    g.call(in, out);
  }

  Chunking chunking() const {
    Chunking c;
    for (int64_t r = 0; r < rows_; ++r) {
      const int32_t* row = &record_[static_cast<size_t>(r * kRowWidth)];
      const int64_t begin = row[0], end = row[1];
      c.rows_not_written_once += row[3] != 1;
      c.rows_outside_their_chunk += r < begin || r >= end;
      c.chunks[begin] = end;
      c.threads.insert(row[2]);
    }
    return c;
  }

 private:
  int64_t rows_;
  std::vector<int32_t> meet_;
  std::vector<float> w_;
  std::vector<int32_t> record_;
  kiln::TensorView x_view_, w_view_, y_view_;
};

}  // namespace kiln_test
