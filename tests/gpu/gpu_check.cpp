// Runs every graph of the GPU package on random inputs at several sizes, with
// aligned and misaligned tensors on a CUDA device, and checks each result
// against the double-precision reference interpreter. Then the negative
// checks: guard misses, a device that does not exist, and (with --fault, a
// process of its own) a kernel fault reported as kiln::CudaError.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <kiln/compiler/interpreter.h>
#include <kiln/graph.h>

#include "cuda_support.h"
#include "gpu_memory.h"
#include "gpu_test_kernels.h"
#include "negative_checks.h"

namespace {

using kiln::compiler::HostTensor;
using kiln_gpu::DeviceTensor;
using kiln_gpu::Layout;
using kiln_gpu::Memory;

constexpr const char* kUsage =
    "usage: gpu_check [--device N] [--graph SUBSTRING] [--quick] [--cpu] [--fault]\n"
    "  Runs every graph of the embedded package on a CUDA device and checks it against the\n"
    "  reference interpreter, then the negative checks. Exits non-zero on any failure.\n"
    "  --device N      the CUDA device (default 0)\n"
    "  --graph S       only graphs whose name contains S\n"
    "  --quick         skip the 16384-row cases (the interpreter is slow on them)\n"
    "  --cpu           run the same checks on host memory with the package's CPU\n"
    "                  specializations (a package built with cpu: targets; no GPU needed)\n"
    "  --fault         only the fault check: a bogus device pointer must give kiln::CudaError\n"
    "                  (run it as its own process: the fault poisons the CUDA context)\n";

struct Options {
  int device = 0;
  std::string graph;
  bool quick = false;
  bool cpu = false;
  bool fault = false;
  bool help = false;
};

class UsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--device") {
      const std::string v = value();
      char* end = nullptr;
      const long d = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || d < 0 || d > 1023) {
        throw UsageError("--device takes a device ordinal, got '" + v + "'");
      }
      o.device = static_cast<int>(d);
    } else if (arg == "--graph") {
      o.graph = value();
    } else if (arg == "--quick") {
      o.quick = true;
    } else if (arg == "--cpu") {
      o.cpu = true;
    } else if (arg == "--fault") {
      o.fault = true;
    } else if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else {
      throw UsageError("unknown argument '" + arg + "'");
    }
  }
  if (o.cpu && o.fault) throw UsageError("--fault needs a CUDA device, not --cpu");
  return o;
}

// FNV-1a: a seed per graph and case that is the same on every platform, so
// a failing case can be rerun with the same inputs.
uint64_t seed_of(const std::string& text, uint64_t salt) {
  uint64_t h = 1469598103934665603ull ^ salt;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return h;
}

bool has_width_4096(const kiln::ir::Graph& g) {
  for (int32_t id : g.inputs) {
    const auto& shape = g.node(id).shape;
    const bool wide = std::any_of(shape.begin(), shape.end(),
                                  [](const auto& d) { return d == kiln::ir::Dim::constant(4096); });
    const bool symbolic =
        std::any_of(shape.begin(), shape.end(), [](const auto& d) { return !d.is_constant(); });
    if (wide && symbolic) return true;
  }
  return false;
}

// The nearest value the symbol accepts.
int64_t fit(int64_t v, const kiln::ir::SymbolDecl& s) {
  v = std::clamp(v, s.min, s.max);
  v -= v % s.divisible_by;
  while (v < s.min) v += s.divisible_by;
  return v;
}

// The first symbol (the rows, in these graphs) takes 1, 3, 64 (a hot size),
// 1000, and 16384 (the benchmark's) where the width is 4096; the others take
// odd values, 1 included, varied across cases.
std::vector<kiln::ir::SymbolValues> symbol_cases(const kiln::ir::Graph& g, bool quick) {
  std::vector<int64_t> rows = {1, 3, 64, 1000};
  if (!quick && has_width_4096(g)) rows.push_back(16384);
  static constexpr int64_t kOdd[] = {5, 1, 33, 255, 7};
  std::vector<kiln::ir::SymbolValues> cases;
  if (g.symbols.empty()) return {kiln::ir::SymbolValues{}};
  for (size_t i = 0; i < rows.size(); ++i) {
    kiln::ir::SymbolValues v(g.symbols.size());
    v[0] = fit(rows[i], g.symbols[0]);
    for (size_t k = 1; k < v.size(); ++k) v[k] = fit(kOdd[(i + k - 1) % 5], g.symbols[k]);
    if (std::find(cases.begin(), cases.end(), v) == cases.end()) cases.push_back(v);
  }
  return cases;
}

std::string sizes_text(const kiln::ir::Graph& g, const kiln::ir::SymbolValues& v) {
  std::string s;
  for (size_t k = 0; k < v.size(); ++k) {
    if (!s.empty()) s += " ";
    s += g.symbols[k].name + "=" + std::to_string(v[k]);
  }
  return s.empty() ? "-" : s;
}

struct Tally {
  int passed = 0;
  int failed = 0;
  bool context_lost = false;
};

struct Outcome {
  std::string specialization = "-";
  double max_error = 0;
  bool ok = true;
  bool errored = false;  // the call or a CUDA call threw: there is no result to compare
  std::string detail;

  void fail(const std::string& why) {
    if (ok) detail = why;
    ok = false;
  }
  void error(const std::string& why) {
    fail(why);
    errored = true;
  }
};

// One call of one graph in one layout: upload, select, call, download,
// compare; inputs must come back unchanged and outputs' red zones intact.
// Fills `r` as it goes, so a call that throws still shows what it selected.
void run_layout(kiln::Package& package, const kiln::ir::Graph& g, Memory& memory,
                const std::vector<HostTensor>& inputs,
                const std::vector<std::vector<uint8_t>>& input_bytes,
                const std::vector<HostTensor>& want, Layout layout, Outcome& r) {
  std::vector<std::unique_ptr<DeviceTensor>> ins;
  std::vector<std::unique_ptr<DeviceTensor>> outs;
  std::vector<const DLTensor*> in_dl;
  std::vector<const DLTensor*> out_dl;
  // misaligned_output: a guard that checks only the inputs' alignment would
  // pass this call to a vectorized kernel.
  auto layout_of = [&](bool last_output) {
    if (layout != Layout::misaligned_output) return layout;
    return last_output ? Layout::misaligned_pointer : Layout::aligned;
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    ins.push_back(
        std::make_unique<DeviceTensor>(memory, inputs[i].dtype, inputs[i].shape, layout_of(false)));
    ins.back()->upload(input_bytes[i]);
    in_dl.push_back(ins.back()->dl());
  }
  for (const HostTensor& w : want) {
    const bool last = outs.size() + 1 == want.size();
    outs.push_back(std::make_unique<DeviceTensor>(memory, w.dtype, w.shape, layout_of(last)));
    outs.back()->poison();
    out_dl.push_back(outs.back()->dl());
  }
  kiln::Graph& graph = package.graph(g.name);
  r.specialization = std::string(graph.select(in_dl, out_dl));
  graph.call(in_dl, out_dl, memory.stream());
  memory.synchronize();

  for (size_t o = 0; o < want.size(); ++o) {
    const std::vector<uint8_t> bytes = outs[o]->download();
    const HostTensor got = HostTensor::from_bytes(want[o].dtype, want[o].shape, bytes.data());
    double ratio = 0;
    const bool close = kiln::compiler::all_close(
        got, want[o], kiln::compiler::tolerance_for(want[o].dtype), &ratio);
    r.max_error = std::max(r.max_error, kiln::compiler::max_abs_error(got, want[o]));
    const std::string& name = g.output_names[o];
    if (!close) {
      char why[160];
      std::snprintf(why, sizeof why, "output '%s' off by %.3g x its %s tolerance", name.c_str(),
                    ratio, std::string(kiln::dtype_name(want[o].dtype)).c_str());
      r.fail(why);
    }
    if (!outs[o]->red_zones_intact()) r.fail("output '" + name + "' written outside its bytes");
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string& name = g.node(g.inputs[i]).name;
    if (ins[i]->download() != input_bytes[i]) r.fail("input '" + name + "' was modified");
    if (!ins[i]->red_zones_intact()) r.fail("memory around input '" + name + "' was written");
  }
}

void print_row(const std::string& graph, const std::string& sizes, Layout layout,
               const Outcome& r) {
  const char* status = r.ok ? "ok" : r.errored ? "ERROR" : "MISMATCH";
  std::printf("%-22s %-16s %-14s %-34s %10.3g  %s%s%s\n", graph.c_str(), sizes.c_str(),
              std::string(kiln_gpu::layout_name(layout)).c_str(), r.specialization.c_str(),
              r.max_error, status, r.detail.empty() ? "" : ": ", r.detail.c_str());
}

// Every case of one graph. `rows_only`, when not empty, restricts the first
// symbol to those values (the device-1 subset).
void run_graph(kiln::Package& package, const kiln::ir::Graph& g, Memory& memory,
               const Options& options, const std::vector<Layout>& layouts,
               const std::vector<int64_t>& rows_only, Tally& tally) {
  uint64_t case_index = 0;
  for (const kiln::ir::SymbolValues& values : symbol_cases(g, options.quick)) {
    ++case_index;
    if (!rows_only.empty() &&
        std::find(rows_only.begin(), rows_only.end(), values.at(0)) == rows_only.end()) {
      continue;
    }
    std::mt19937_64 rng(seed_of(g.name, case_index));
    std::vector<HostTensor> inputs;
    std::vector<std::vector<uint8_t>> input_bytes;
    for (int32_t id : g.inputs) {
      const auto& node = g.node(id);
      inputs.push_back(
          kiln::compiler::random_tensor(node.dtype, kiln::ir::eval_shape(node.shape, values), rng));
      input_bytes.push_back(inputs.back().to_bytes());
    }
    const std::vector<HostTensor> want = kiln::compiler::interpret(g, inputs);
    const std::string sizes = sizes_text(g, values);
    for (Layout layout : layouts) {
      Outcome r;
      try {
        run_layout(package, g, memory, inputs, input_bytes, want, layout, r);
      } catch (const kiln_gpu::CudaCallError& e) {
        r.error(e.what());
        // A fault is sticky: every later CUDA call would fail the same way.
        if (memory.is_cuda() && cudaDeviceSynchronize() != cudaSuccess) tally.context_lost = true;
      } catch (const std::exception& e) {
        r.error(e.what());
      }
      print_row(g.name, sizes, layout, r);
      ++(r.ok ? tally.passed : tally.failed);
      if (tally.context_lost) return;
    }
  }
}

int device_count_or_explain() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::fprintf(stderr,
                 "gpu_check: no CUDA device (cudaGetDeviceCount: %s); --cpu runs the same checks "
                 "on the CPU specializations of a package built with cpu: targets\n",
                 e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return 0;
  }
  return count;
}

int run(const Options& options) {
  const auto start = std::chrono::steady_clock::now();
  int device_count = 0;
  std::unique_ptr<Memory> memory;
  if (options.cpu) {
    memory = Memory::host();
    std::printf("gpu_check: host memory, the package's CPU specializations (--cpu)\n");
  } else {
    device_count = device_count_or_explain();
    if (device_count == 0) return 1;
    if (options.device >= device_count) {
      std::fprintf(stderr, "gpu_check: --device %d, but there are %d devices\n", options.device,
                   device_count);
      return 1;
    }
    const kiln_gpu::DeviceInfo info = kiln_gpu::describe_device(options.device);
    std::printf(
        "gpu_check: cuda:%d %s (sm %s, %.0f GiB), driver %s, CUDA %s (runtime %s), "
        "%d device%s\n",
        options.device, info.name.c_str(), info.compute.c_str(), info.memory_gib,
        info.driver.c_str(), info.cuda_driver.c_str(), info.cuda_runtime.c_str(), device_count,
        device_count == 1 ? "" : "s");
    if (options.fault) return kiln_gpu::run_fault_check(options.device);
    memory = Memory::cuda(options.device);
  }
  kiln::Package& package = gpu_test_kernels::loaded_package();
  std::printf("package: %zu graphs, %zu bytes embedded\n\n", package.graph_names().size(),
              gpu_test_kernels::package().size());

  std::vector<kiln::ir::Graph> graphs;
  for (const auto& r : kiln::registered_graphs()) {
    if (r.name.find(options.graph) == std::string::npos) continue;
    graphs.push_back(kiln::trace(r.name, r.function));
  }
  if (graphs.empty()) {
    std::fprintf(stderr, "gpu_check: no graph matches '%s'\n", options.graph.c_str());
    return 1;
  }

  std::printf("%-22s %-16s %-14s %-34s %10s  %s\n", "graph", "sizes", "layout", "specialization",
              "max error", "check");
  const std::vector<Layout> all_layouts = {Layout::aligned, Layout::misaligned_pointer,
                                           Layout::misaligned_byte_offset,
                                           Layout::misaligned_output};
  Tally tally;
  for (const kiln::ir::Graph& g : graphs) {
    run_graph(package, g, *memory, options, all_layouts, {}, tally);
    if (tally.context_lost) break;
  }

  // Modules load per device: a second device must get its own, not the
  // first device's handles.
  if (!options.cpu && device_count >= 2 && !tally.context_lost) {
    const int other = options.device == 0 ? 1 : 0;
    std::printf("\nthe benchmark graphs again on cuda:%d\n", other);
    std::unique_ptr<Memory> second = Memory::cuda(other);
    for (const kiln::ir::Graph& g : graphs) {
      if (!has_width_4096(g)) continue;
      run_graph(package, g, *second, options, {Layout::aligned, Layout::misaligned_pointer},
                {64, 1000}, tally);
      if (tally.context_lost) break;
    }
  }

  kiln_gpu::Counts negative;
  if (!tally.context_lost) {
    std::printf("\nnegative checks\n");
    kiln_gpu::check_guard_misses(*memory, negative);
    if (!options.cpu) {
      kiln_gpu::check_missing_device(*memory, device_count, negative);
      if (device_count >= 2) {
        std::unique_ptr<Memory> second = Memory::cuda(options.device == 0 ? 1 : 0);
        kiln_gpu::check_mixed_devices(*memory, *second, negative);
      }
    }
  } else {
    std::printf("\nthe CUDA context is unusable after a fault; remaining checks skipped\n");
  }

  const int passed = tally.passed + negative.passed;
  const int failed = tally.failed + negative.failed;
  std::printf("\n%.1f s\ngpu_check: %d passed, %d failed\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              passed, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Line by line through run.sh's tee, so a run cut short still shows how far it got.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "gpu_check: %s\n%s", e.what(), kUsage);
    return 2;
  }
  if (options.help) {
    std::printf("%s", kUsage);
    return 0;
  }
  try {
    return run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_check: %s\n", e.what());
    return 1;
  }
}
