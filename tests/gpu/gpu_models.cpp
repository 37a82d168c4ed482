// GPU time per call of the two model examples at the sizes of ANCHORS.md:
// examples/mlp at 8192x1024 -> 4096 -> 1024 and examples/attention (causal,
// single head, d 128) at b16 n2048 and b1 n8192, all bf16, from the
// examples' own packages. torch_models.py times torch.compile on the same
// math the same way; merge_results.py puts the two side by side. Speed is
// reported, never asserted. With --dump DIR, each model's timed call (its
// inputs and output) is written to DIR (output_dump.h) and
// `torch_models.py --check DIR` checks that output against a float64
// reference computed from the same inputs: the timed specialization is the
// checked one.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <kiln/runtime.h>

#include "attention_kernels.h"
#include "cuda_support.h"
#include "mlp_kernels.h"
#include "output_dump.h"

namespace {

using kiln_gpu::bf16_bits;
using kiln_gpu::check_cuda;
using kiln_gpu::median_ms_per_call;

constexpr int kRepeats = 7;
constexpr int kCallsPerRepeat = 20;

// A bf16 device tensor, uniform in [-scale, scale).
struct Tensor {
  std::vector<int64_t> shape;
  void* data = nullptr;
  DLTensor dl{};

  Tensor(std::vector<int64_t> s, float scale, uint64_t seed, int device) : shape(std::move(s)) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    std::vector<uint16_t> host(n);
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-scale, scale);
    for (auto& h : host) h = bf16_bits(u(rng));
    check_cuda(cudaMalloc(&data, n * 2), "cudaMalloc");
    check_cuda(cudaMemcpy(data, host.data(), n * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
    dl.data = data;
    dl.device = DLDevice{kDLCUDA, device};
    dl.ndim = static_cast<int32_t>(shape.size());
    dl.dtype = kiln::to_dlpack(kiln::DType::bf16);
    dl.shape = shape.data();
  }
  ~Tensor() { cudaFree(data); }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
};

struct Model {
  std::string name;   // "mlp", "attention_b16_n2048"
  std::string graph;  // the graph in its package
  kiln::Package* package;
  std::vector<std::vector<int64_t>> inputs;
  std::vector<std::string> input_names;  // the graph's, and torch_models.py's parameters
  std::vector<float> scales;             // per input
  std::vector<int64_t> output;
  double flops;
};

}  // namespace

int main(int argc, char** argv) {
  int device = 0;
  std::string dump_dir;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
      device = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--dump") == 0 && i + 1 < argc) {
      dump_dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: gpu_models [--device N] [--dump DIR]\n");
      return 2;
    }
  }
  try {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || device >= count) {
      std::fprintf(stderr, "gpu_models: no CUDA device %d\n", device);
      return 1;
    }
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    const kiln_gpu::DeviceInfo info = kiln_gpu::describe_device(device);
    cudaStream_t stream = nullptr;
    check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    const char* commit = std::getenv("KILN_COMMIT");

    // Weights scaled by 1/sqrt(fan-in), as a trained layer's roughly are, so
    // the activations stay in an ordinary range.
    const float w1 = 1.0f / 32, w2 = 1.0f / 64;
    std::vector<Model> models = {
        {"mlp",
         "mlp",
         &mlp_kernels::loaded_package(),
         {{8192, 1024}, {1024, 4096}, {4096}, {4096, 1024}, {1024}, {1024}, {1024}},
         {"x", "w1", "b1", "w2", "b2", "gamma", "beta"},
         {1, w1, w1, w2, w2, 1, 1},
         {8192, 1024},
         2.0 * 8192 * 1024 * 4096 * 2},
        {"attention_b16_n2048",
         "attention",
         &attention_kernels::loaded_package(),
         {{16, 2048, 128}, {16, 2048, 128}, {16, 2048, 128}},
         {"q", "k", "v"},
         {1, 1, 1},
         {16, 2048, 128},
         2.0 * 16 * 2048 * 2048 * 128 * 2},
        {"attention_b1_n8192",
         "attention",
         &attention_kernels::loaded_package(),
         {{1, 8192, 128}, {1, 8192, 128}, {1, 8192, 128}},
         {"q", "k", "v"},
         {1, 1, 1},
         {1, 8192, 128},
         2.0 * 8192 * 8192 * 128 * 2},
    };
    std::unique_ptr<kiln_gpu::OutputDump> dump;
    if (!dump_dir.empty()) dump = std::make_unique<kiln_gpu::OutputDump>(dump_dir);
    std::printf("%-22s %-18s %10s %10s\n", "model", "specialization", "ms/call", "TFLOP/s");
    int status = 0;
    for (const Model& m : models) {
      std::vector<std::unique_ptr<Tensor>> in;
      for (size_t i = 0; i < m.inputs.size(); ++i) {
        in.push_back(std::make_unique<Tensor>(m.inputs[i], m.scales[i], 2026 + i, device));
      }
      Tensor out(m.output, 0, 1, device);
      std::vector<const DLTensor*> ins;
      ins.reserve(in.size());
      for (const auto& t : in) ins.push_back(&t->dl);
      std::vector<const DLTensor*> outs = {&out.dl};
      std::string line = "{\"bench\": \"gpu_model\", \"model\": \"" + m.name + "\"";
      try {
        kiln::Graph& g = m.package->graph(m.graph);
        const std::string spec(g.select(ins, outs));
        auto call = [&] { g.call(ins, outs, stream); };
        for (int i = 0; i < 3; ++i) call();  // loads kernels, picks cuBLASLt algorithms
        check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        const double ms = median_ms_per_call(call, stream, kRepeats, kCallsPerRepeat);
        const double tflops = m.flops / (ms * 1e-3) / 1e12;
        if (dump) {
          // Every timed call read the same inputs; `out` holds the last one's result.
          check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
          std::vector<kiln_gpu::OutputDump::Tensor> tensors;
          for (size_t i = 0; i < in.size(); ++i) {
            tensors.push_back(
                {m.input_names[i], m.name + "_" + m.input_names[i] + ".npy", &in[i]->dl});
          }
          dump->add_row("\"suite\":\"model\",\"model\":\"" + m.name + "\",\"specialization\":\"" +
                            kiln_gpu::json_escape(spec) + "\"",
                        tensors, {"out", m.name + "_out.npy", &out.dl});
        }
        char buf[256];
        std::snprintf(buf, sizeof buf,
                      ", \"specialization\": \"%s\", \"median_ms\": %.4f, \"tflop_per_s\": %.1f, "
                      "\"repeats\": %d, \"calls_per_repeat\": %d",
                      spec.c_str(), ms, tflops, kRepeats, kCallsPerRepeat);
        line += buf;
        std::printf("%-22s %-18s %10.4f %10.1f\n", m.name.c_str(), spec.c_str(), ms, tflops);
      } catch (const std::exception& e) {
        line += ", \"error\": \"" + kiln_gpu::json_escape(e.what()) + "\"";
        std::printf("%-22s error: %s\n", m.name.c_str(), e.what());
        status = 1;
      }
      line += ", \"device\": \"" + kiln_gpu::json_escape(info.name) + "\", \"driver\": \"" +
              kiln_gpu::json_escape(info.driver) + "\", \"commit\": \"" +
              kiln_gpu::json_escape(commit ? commit : "unknown") + "\"}";
      std::printf("%s\n", line.c_str());
    }
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_models: %s\n", e.what());
    return 1;
  }
}
