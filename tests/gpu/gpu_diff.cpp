// The differential tests on a CUDA device: the random graphs of
// tests/unit/test_differential (same generator, same seeds), built into one
// package for cuda:sm_XX here and now (nvcc through the generator), run at
// two size sets each, aligned and misaligned, and checked against the
// double-precision interpreter. A failure prints the seed, the graph, the
// sizes and the worst element; the exit status counts them.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <kiln/compiler/generator.h>
#include <kiln/compiler/interpreter.h>
#include <kiln/graph.h>

#include "cuda_support.h"
#include "gpu_memory.h"
#include "test_support/random_graph.h"

namespace {

using kiln::compiler::HostTensor;
using kiln_gpu::DeviceTensor;
using kiln_gpu::Layout;
using kiln_gpu::Memory;

constexpr const char* kUsage =
    "usage: gpu_diff [--seeds START:COUNT] [--arch sm_NN] [--device N] [--cpu] [--build-only]\n"
    "                [--work DIR] [--package FILE] [--nvcc PATH] [--cxx PATH] [--ninja PATH]\n"
    "  Builds the random graphs of the given seeds (default: KILN_DIFF_SEEDS, else 1:40, the\n"
    "  batch test_differential runs on the CPU) for cuda:<arch> in one package, runs each at two\n"
    "  size sets, aligned and misaligned, and checks it against the reference interpreter.\n"
    "  Exits non-zero on any failure.\n"
    "  --arch sm_NN    the CUDA target (default sm_90)\n"
    "  --device N      the CUDA device (default 0)\n"
    "  --cpu           build for the host's CPU (cpu:x86-64) and run on host memory\n"
    "  --build-only    build the package and stop (no device needed: checks nvcc takes every\n"
    "                  kernel)\n"
    "  --work DIR      where the package is built (default gpu_diff_work in the current "
    "directory)\n"
    "  --package FILE  run this package (written by --build-only, for the same seeds and arch,\n"
    "                  e.g. on a machine with nvcc) instead of building one\n";

struct Options {
  std::string seeds;
  std::string arch = "sm_90";
  int device = 0;
  bool cpu = false;
  bool build_only = false;
  std::filesystem::path work = "gpu_diff_work";
  std::filesystem::path package;
  std::string nvcc = KILN_GPU_DIFF_NVCC;
  std::string cxx = KILN_GPU_DIFF_CXX;
  std::string ninja = KILN_GPU_DIFF_NINJA;
  bool help = false;
};

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--seeds") {
      o.seeds = value();
    } else if (arg == "--arch") {
      o.arch = value();
    } else if (arg == "--device") {
      o.device = std::stoi(value());
    } else if (arg == "--cpu") {
      o.cpu = true;
    } else if (arg == "--build-only") {
      o.build_only = true;
    } else if (arg == "--work") {
      o.work = value();
    } else if (arg == "--package") {
      o.package = value();
    } else if (arg == "--nvcc") {
      o.nvcc = value();
    } else if (arg == "--cxx") {
      o.cxx = value();
    } else if (arg == "--ninja") {
      o.ninja = value();
    } else if (arg == "-h" || arg == "--help") {
      o.help = true;
    } else {
      throw std::invalid_argument("unknown argument '" + arg + "'");
    }
  }
  return o;
}

// One call in one layout; returns "" or what went wrong. `ratio`: the
// largest |got - want| / allowed error of any element (within the
// generator's bounds: <= 1).
std::string run_call(kiln::Package& package, const kiln_test::RandomGraph& rg, Memory& memory,
                     const std::vector<HostTensor>& inputs, const std::vector<HostTensor>& want,
                     Layout layout, double& ratio) {
  const kiln::ir::Graph& g = rg.graph;
  ratio = 0;
  std::vector<std::unique_ptr<DeviceTensor>> ins;
  std::vector<std::unique_ptr<DeviceTensor>> outs;
  std::vector<const DLTensor*> in_dl;
  std::vector<const DLTensor*> out_dl;
  for (const HostTensor& t : inputs) {
    ins.push_back(std::make_unique<DeviceTensor>(memory, t.dtype, t.shape, layout));
    ins.back()->upload(t.to_bytes());
    in_dl.push_back(ins.back()->dl());
  }
  for (const HostTensor& w : want) {
    outs.push_back(std::make_unique<DeviceTensor>(memory, w.dtype, w.shape, layout));
    outs.back()->poison();
    out_dl.push_back(outs.back()->dl());
  }
  try {
    package.graph(g.name).call(in_dl, out_dl, memory.stream());
    memory.synchronize();
  } catch (const std::exception& e) {
    return std::string("call threw: ") + e.what() + "\n";
  }
  std::vector<HostTensor> got;
  std::string problems;
  for (size_t o = 0; o < want.size(); ++o) {
    const std::vector<uint8_t> bytes = outs[o]->download();
    got.push_back(HostTensor::from_bytes(want[o].dtype, want[o].shape, bytes.data()));
    if (!outs[o]->red_zones_intact()) {
      problems += "output " + g.output_names[o] + " written outside its bytes\n";
    }
  }
  std::vector<double> ratios;
  const std::string mismatch = kiln_test::compare_outputs(rg, got, want, &ratios);
  for (double r : ratios) ratio = std::max(ratio, r);
  return problems + mismatch;
}

int run(const Options& o) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<uint64_t> seeds;
  if (!o.seeds.empty()) ::setenv("KILN_DIFF_SEEDS", o.seeds.c_str(), 1);
  seeds = kiln_test::seeds_from_env(1, 40);
  const std::string target = o.cpu ? "cpu:x86-64" : "cuda:" + o.arch;

  const kiln_test::RandomGraphOptions gen;  // the same graphs as test_differential's
  std::vector<kiln_test::RandomGraph> rgs;
  std::vector<kiln::ir::Graph> graphs;
  std::vector<uint64_t> graph_seeds;
  int failures = 0;
  for (uint64_t seed : seeds) {
    try {
      rgs.push_back(kiln_test::random_graph(seed, gen));
      graphs.push_back(rgs.back().graph);
      graph_seeds.push_back(seed);
    } catch (const std::exception& e) {
      std::printf("FAIL random graph seed %llu does not trace: %s\n",
                  static_cast<unsigned long long>(seed), e.what());
      ++failures;
    }
  }

  kiln::compiler::GeneratorOptions go;
  go.name = "gpu_diff";
  go.cpp_namespace = "gpu_diff";
  go.targets = {target};
  go.out_dir = o.work / "out";
  go.work_dir = o.work / "work";
  go.nvcc = o.nvcc;
  go.cxx = o.cxx;
  go.ninja = o.ninja;
  std::printf("gpu_diff: %zu random graphs (seeds %llu..%llu) for %s\n", graphs.size(),
              static_cast<unsigned long long>(seeds.front()),
              static_cast<unsigned long long>(seeds.back()), target.c_str());
  std::filesystem::path package_path = o.package;
  try {
    if (package_path.empty()) package_path = kiln::compiler::run_generator(go, graphs).package;
  } catch (const std::exception& batch_error) {
    // Find the graphs that fail on their own.
    std::printf("the batch does not build: %s\n", batch_error.what());
    for (size_t i = 0; i < graphs.size(); ++i) {
      try {
        kiln::compiler::run_generator(go, {graphs[i]});
      } catch (const std::exception& e) {
        std::printf("FAIL random graph seed %llu does not build for %s: %s\n%s",
                    static_cast<unsigned long long>(graph_seeds[i]), target.c_str(), e.what(),
                    kiln::ir::graph_to_string(graphs[i]).c_str());
      }
    }
    return 1;
  }
  const double build_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (o.package.empty()) std::printf("built %s in %.1f s\n", package_path.c_str(), build_s);
  if (o.build_only) return failures == 0 ? 0 : 1;

  std::unique_ptr<Memory> memory;
  if (o.cpu) {
    memory = Memory::host();
  } else {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count <= o.device) {
      std::fprintf(stderr, "gpu_diff: no CUDA device %d (--cpu runs on the host)\n", o.device);
      return 1;
    }
    const kiln_gpu::DeviceInfo info = kiln_gpu::describe_device(o.device);
    std::printf("device cuda:%d %s (sm %s), driver %s\n", o.device, info.name.c_str(),
                info.compute.c_str(), info.driver.c_str());
    memory = Memory::cuda(o.device);
  }
  kiln::Package package = kiln::Package::open(package_path);
  int checks = 0;
  double closest = 0;  // the largest error / allowed error seen
  uint64_t closest_seed = 0;
  for (size_t i = 0; i < graphs.size(); ++i) {
    const kiln::ir::Graph& g = graphs[i];
    const uint64_t seed = graph_seeds[i];
    const auto sizes = kiln_test::random_sizes(g, seed, 2);
    for (size_t s = 0; s < sizes.size(); ++s) {
      std::mt19937_64 rng(seed * 1000 + s);
      std::vector<HostTensor> inputs;
      for (int32_t id : g.inputs) {
        inputs.push_back(kiln::compiler::random_tensor(
            g.node(id).dtype, kiln::ir::eval_shape(g.node(id).shape, sizes[s]), rng));
      }
      const std::vector<HostTensor> want = kiln::compiler::interpret(g, inputs);
      for (Layout layout : {Layout::aligned, Layout::misaligned_byte_offset}) {
        double ratio = 0;
        const std::string problem = run_call(package, rgs[i], *memory, inputs, want, layout, ratio);
        ++checks;
        if (ratio > closest) {
          closest = ratio;
          closest_seed = seed;
        }
        if (!problem.empty()) {
          ++failures;
          const std::string where =
              target + " (" + std::string(kiln_gpu::layout_name(layout)) + ")";
          std::printf("FAIL %s\n",
                      kiln_test::failure_report(seed, where, g, sizes[s], problem).c_str());
        }
      }
    }
  }
  const double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "gpu_diff: %d checks, %d failures, %.1f s; closest to its bounds: %.3g of them (seed %llu)\n",
      checks, failures, total_s, closest, static_cast<unsigned long long>(closest_seed));
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse_options(argc, argv);
    if (o.help) {
      std::printf("%s", kUsage);
      return 0;
    }
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_diff: %s\n%s", e.what(), kUsage);
    return 2;
  }
}
