// The CUDA fallback JIT on a real device: every graph of the GPU suite, from
// a package that holds only its IR, is compiled by NVRTC on the first call,
// checked against the reference interpreter (aligned and misaligned
// tensors), then served by the runtime without the JIT, loaded from the disk
// cache by a fresh package and JIT with zero compiles, and exported and
// merged into a package that runs it with no JIT request at all.
//
// Also the benchmark: per graph, the NVRTC compile (JitCounters
// compile time), the whole first call that compiles, the first call that
// loads from the disk cache, and a call the runtime serves from what the JIT
// compiled; medians of --runs. JSON lines, then a table. Exits non-zero when
// a check fails; speed never fails it.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <kiln/compiler/interpreter.h>
#include <kiln/graph.h>
#include <kiln/jit/fallback_jit.h>

#include "cuda_support.h"
#include "gpu_memory.h"
#include "kiln/compiler/hash.h"
#include "kiln/compiler/package_merge.h"
#include "kiln/compiler/package_writer.h"
#include "kiln/compiler/manifest_builder.h"

namespace {

namespace fs = std::filesystem;
using kiln::compiler::HostTensor;
using kiln_gpu::DeviceTensor;
using kiln_gpu::Layout;
using kiln_gpu::Memory;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage =
    "usage: gpu_jit [--device N] [--runs N] [--dir DIR] [--graph SUBSTRING]\n"
    "  Compiles every graph of the GPU suite with the CUDA JIT (NVRTC) from an IR-only package,\n"
    "  checks it against the reference interpreter, the disk cache and export + merge, and times\n"
    "  compile, disk hit and runtime hit. Exits non-zero on any failed check.\n"
    "  --runs N   timed repetitions per graph (default 5); medians are reported\n"
    "  --dir DIR  scratch directory for cache entries and packages (default: a temp dir)\n";

struct Options {
  int device = 0;
  int runs = 5;
  fs::path dir;
  std::string graph;
};

// A JIT with the disk cache in `cache`, or none when empty.
kiln::jit::JitOptions jit_options(const fs::path& cache = {}) {
  kiln::jit::JitOptions options;
  options.disk_cache = !cache.empty();
  options.cache_dir = cache;
  return options;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The nearest value the symbol accepts.
int64_t fit(int64_t v, const kiln::ir::SymbolDecl& s) {
  v = std::clamp(v, s.min, s.max);
  v -= v % s.divisible_by;
  while (v < s.min) v += s.divisible_by;
  return v;
}

// The IR of every graph and nothing else: each call on it is a miss.
std::vector<uint8_t> ir_only_package(const std::vector<kiln::ir::Graph>& graphs) {
  kiln::fb::ManifestT m;
  for (const kiln::ir::Graph& g : graphs) {
    m.graphs.push_back(kiln::compiler::graph_entry(g, kiln::compiler::structure_hash(g)));
  }
  m.provenance = std::make_unique<kiln::fb::ProvenanceT>();
  m.provenance->kiln_version = "gpu_jit";
  return kiln::compiler::write_package(std::move(m), {});
}

std::span<const std::byte> as_bytes(const std::vector<uint8_t>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size()};
}

// One graph's inputs and the interpreter's outputs at fixed sizes.
struct Case {
  kiln::ir::SymbolValues values;
  std::vector<HostTensor> inputs;
  std::vector<std::vector<uint8_t>> input_bytes;
  std::vector<HostTensor> want;
};

Case make_case(const kiln::ir::Graph& g, uint64_t seed) {
  Case c;
  // Rows off every hot size; other symbols odd.
  for (size_t s = 0; s < g.symbols.size(); ++s) {
    c.values.push_back(fit(s == 0 ? 1000 : 33, g.symbols[s]));
  }
  std::mt19937_64 rng(seed);
  for (int32_t id : g.inputs) {
    const auto& node = g.node(id);
    c.inputs.push_back(
        kiln::compiler::random_tensor(node.dtype, kiln::ir::eval_shape(node.shape, c.values), rng));
    c.input_bytes.push_back(c.inputs.back().to_bytes());
  }
  c.want = kiln::compiler::interpret(g, c.inputs);
  return c;
}

// Calls the graph once on the device and compares; "" when it matches.
std::string call_and_check(kiln::Package& package, const kiln::ir::Graph& g, Memory& memory,
                           const Case& c, Layout layout, double* call_ms = nullptr) {
  std::vector<std::unique_ptr<DeviceTensor>> ins, outs;
  std::vector<const DLTensor*> in_dl, out_dl;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    ins.push_back(
        std::make_unique<DeviceTensor>(memory, c.inputs[i].dtype, c.inputs[i].shape, layout));
    ins.back()->upload(c.input_bytes[i]);
    in_dl.push_back(ins.back()->dl());
  }
  for (const HostTensor& w : c.want) {
    outs.push_back(std::make_unique<DeviceTensor>(memory, w.dtype, w.shape, layout));
    outs.back()->poison();
    out_dl.push_back(outs.back()->dl());
  }
  memory.synchronize();
  const auto start = Clock::now();
  package.graph(g.name).call(in_dl, out_dl, memory.stream());
  memory.synchronize();
  if (call_ms != nullptr) *call_ms = ms_since(start);
  std::string why;
  for (size_t o = 0; o < c.want.size(); ++o) {
    const std::vector<uint8_t> bytes = outs[o]->download();
    const HostTensor got = HostTensor::from_bytes(c.want[o].dtype, c.want[o].shape, bytes.data());
    double ratio = 0;
    if (!kiln::compiler::all_close(got, c.want[o], kiln::compiler::tolerance_for(c.want[o].dtype),
                                   &ratio)) {
      why +=
          "output " + std::to_string(o) + " off by " + std::to_string(ratio) + "x its tolerance; ";
    }
    if (!outs[o]->red_zones_intact()) why += "output " + std::to_string(o) + " overran; ";
  }
  return why;
}

struct Row {
  std::string graph;
  double compile_ms = 0;     // NVRTC, all kernels of the graph (JitCounters::compile_ns)
  double first_call_ms = 0;  // the call that compiles: lower, NVRTC, load, launch, sync
  double disk_hit_ms = 0;    // a fresh package and JIT: read entry, load module, launch, sync
  double jit_hit_ms = 0;     // a call the runtime serves from what the JIT compiled
  size_t kernels = 0;
};

class Checker {
 public:
  void expect(bool ok, const std::string& graph, const std::string& what) {
    std::printf("{\"check\":\"gpu_jit\",\"graph\":\"%s\",\"what\":\"%s\",\"ok\":%s}\n",
                graph.c_str(), what.c_str(), ok ? "true" : "false");
    if (!ok) {
      ++failed_;
      std::fprintf(stderr, "gpu_jit: FAILED %s: %s\n", graph.c_str(), what.c_str());
    } else {
      ++passed_;
    }
  }
  int failed() const { return failed_; }
  int passed() const { return passed_; }

 private:
  int failed_ = 0;
  int passed_ = 0;
};

Row run_graph(const kiln::ir::Graph& g, const std::vector<uint8_t>& base, Memory& memory,
              const Options& o, Checker& check) {
  Row row;
  row.graph = g.name;
  const Case c = make_case(g, kiln::compiler::hash_string(g.name).lo);
  const auto open = [&] { return kiln::Package::open_memory(as_bytes(base)); };

  // Compiles, no disk cache: every run a fresh package and JIT.
  std::vector<double> compile, first;
  for (int r = 0; r < o.runs; ++r) {
    kiln::jit::FallbackJit jit(jit_options());
    kiln::set_jit_compiler(&jit);
    kiln::Package package = open();
    double ms = 0;
    const std::string why = call_and_check(package, g, memory, c, Layout::aligned, &ms);
    if (r == 0) check.expect(why.empty(), g.name, "first call compiles and matches: " + why);
    compile.push_back(static_cast<double>(jit.counters().compile_ns) / 1e6);
    first.push_back(ms);
    if (r == 0) {
      check.expect(jit.counters().compiles == 1, g.name, "one compile");
      // The runtime keeps what the JIT returned: hits that never ask it.
      std::vector<double> hits;
      for (int h = 0; h < 5; ++h) {
        double hit_ms = 0;
        const std::string again = call_and_check(package, g, memory, c, Layout::aligned, &hit_ms);
        if (h == 0) check.expect(again.empty(), g.name, "jit hit matches: " + again);
        hits.push_back(hit_ms);
      }
      row.jit_hit_ms = median(hits);
      const kiln::GraphCounters counters = package.graph(g.name).counters();
      check.expect(counters.jit_hits == 5 && jit.counters().requests == 1, g.name,
                   "repeated calls are jit_hits, not JIT requests");
      // Misaligned tensors: the unaligned variant, compiled once more.
      const std::string odd = call_and_check(package, g, memory, c, Layout::misaligned_pointer);
      check.expect(odd.empty(), g.name, "misaligned call compiles and matches: " + odd);
    }
    kiln::set_jit_compiler(nullptr);
  }
  row.compile_ms = median(compile);
  row.first_call_ms = median(first);

  // The disk cache: one JIT stores, then each run a fresh package and JIT
  // (a new process, as far as the cache knows) loads.
  const fs::path cache = o.dir / ("cache-" + g.name);
  fs::remove_all(cache);
  {
    kiln::jit::FallbackJit jit(jit_options(cache));
    kiln::set_jit_compiler(&jit);
    kiln::Package package = open();
    call_and_check(package, g, memory, c, Layout::aligned);
    kiln::set_jit_compiler(nullptr);
  }
  std::vector<double> disk;
  for (int r = 0; r < o.runs; ++r) {
    kiln::jit::FallbackJit jit(jit_options(cache));
    kiln::set_jit_compiler(&jit);
    kiln::Package package = open();
    double ms = 0;
    const std::string why = call_and_check(package, g, memory, c, Layout::aligned, &ms);
    disk.push_back(ms);
    if (r == 0) {
      check.expect(why.empty() && jit.counters().compiles == 0 && jit.counters().disk_hits == 1,
                   g.name, "a fresh JIT loads from the disk cache with zero compiles: " + why);
      // Export what this process ran (a disk hit counts), merge, and run the
      // result with a JIT that must never be asked.
      const fs::path delta = o.dir / (g.name + "-delta.kiln");
      const size_t exported = package.export_compiled(delta);
      const fs::path merged = o.dir / (g.name + "-merged.kiln");
      const fs::path deltas[] = {delta};
      kiln::compiler::merge_package_files(o.dir / "base.kiln", deltas, merged);
      kiln::jit::FallbackJit fresh(jit_options());
      kiln::set_jit_compiler(&fresh);
      kiln::Package result = kiln::Package::open(merged);
      const std::string after = call_and_check(result, g, memory, c, Layout::aligned);
      const kiln::GraphCounters counters = result.graph(g.name).counters();
      check.expect(
          exported == 1 && after.empty() && counters.hits == 1 && fresh.counters().requests == 0,
          g.name, "export + merge runs with zero compiles: " + after);
    }
    kiln::set_jit_compiler(nullptr);
  }
  row.disk_hit_ms = median(disk);
  fs::remove_all(cache);
  return row;
}

int run(const Options& o) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count <= o.device) {
    std::fprintf(stderr, "gpu_jit: no CUDA device %d\n", o.device);
    return 1;
  }
  const kiln_gpu::DeviceInfo info = kiln_gpu::describe_device(o.device);
  const char* commit = std::getenv("KILN_COMMIT");
  char date[32] = {};
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  std::printf("gpu_jit: cuda:%d %s (sm %s), driver %s, CUDA %s\n", o.device, info.name.c_str(),
              info.compute.c_str(), info.driver.c_str(), info.cuda_driver.c_str());

  std::vector<kiln::ir::Graph> graphs;
  for (const auto& r : kiln::registered_graphs()) {
    if (r.name.find(o.graph) != std::string::npos)
      graphs.push_back(kiln::trace(r.name, r.function));
  }
  const std::vector<uint8_t> base = ir_only_package(graphs);
  fs::create_directories(o.dir);
  {
    std::FILE* f = std::fopen((o.dir / "base.kiln").c_str(), "wb");
    if (f == nullptr || std::fwrite(base.data(), 1, base.size(), f) != base.size()) {
      throw std::runtime_error("cannot write " + (o.dir / "base.kiln").string());
    }
    std::fclose(f);
  }

  const std::unique_ptr<Memory> memory = Memory::cuda(o.device);
  Checker check;
  std::vector<Row> rows;
  for (const kiln::ir::Graph& g : graphs) {
    try {
      rows.push_back(run_graph(g, base, *memory, o, check));
    } catch (const std::exception& e) {
      check.expect(false, g.name, std::string("threw: ") + e.what());
      kiln::set_jit_compiler(nullptr);
      if (cudaDeviceSynchronize() != cudaSuccess) break;  // a sticky fault
    }
  }
  for (const Row& r : rows) {
    std::printf(
        "{\"bench\":\"jit_cuda\",\"date\":\"%s\",\"device\":\"%s\",\"commit\":\"%s\","
        "\"graph\":\"%s\",\"runs\":%d,\"nvrtc_compile_ms\":%.2f,\"first_call_ms\":%.2f,"
        "\"disk_hit_ms\":%.3f,\"jit_hit_ms\":%.4f,\"target_compile_ms\":500,"
        "\"target_disk_hit_ms\":2}\n",
        date, info.name.c_str(), commit ? commit : "unknown", r.graph.c_str(), o.runs, r.compile_ms,
        r.first_call_ms, r.disk_hit_ms, r.jit_hit_ms);
  }
  std::printf("\n%-22s %12s %12s %12s %12s\n", "graph (medians)", "NVRTC ms", "1st call ms",
              "disk hit ms", "jit hit ms");
  for (const Row& r : rows) {
    std::printf("%-22s %12.1f %12.1f %12.3f %12.4f\n", r.graph.c_str(), r.compile_ms,
                r.first_call_ms, r.disk_hit_ms, r.jit_hit_ms);
  }
  std::printf("\ngpu_jit: %d checks passed, %d failed\n", check.passed(), check.failed());
  return check.failed() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "gpu_jit: %s needs a value\n%s", arg.c_str(), kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--device") {
      o.device = std::atoi(value().c_str());
    } else if (arg == "--runs") {
      o.runs = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--dir") {
      o.dir = value();
    } else if (arg == "--graph") {
      o.graph = value();
    } else {
      std::fprintf(stderr, "gpu_jit: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (o.dir.empty())
    o.dir = fs::temp_directory_path() / ("kiln-gpu-jit-" + std::to_string(::getpid()));
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_jit: %s\n", e.what());
    return 1;
  }
}
