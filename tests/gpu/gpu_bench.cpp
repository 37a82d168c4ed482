// GPU throughput of the eight benchmark graphs at 16384x4096 (f32 and bf16:
// gelu_affine, softmax, layernorm, rmsnorm), in GB/s moved (x read and y
// written once; the [4096] vectors are noise), against a device-to-device
// copy of the f32 tensor measured in the same run (ANCHORS.md's copy
// ceiling, counted the same way: bytes read + written). torch_peer.py times
// torch.compile the same way; merge_results.py puts the two side by side.
// Speed is reported, never asserted. With --dump DIR, each row's last timed
// call (its inputs and its output) is written to DIR (output_dump.h), and
// `torch_peer.py --check DIR` checks that output against a float64
// reference: the specialization that was timed is the one that is checked.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <kiln/runtime.h>

#include "cuda_support.h"
#include "gpu_test_kernels.h"
#include "output_dump.h"

namespace {

using kiln_gpu::bf16_bits;
using kiln_gpu::check_cuda;
using kiln_gpu::median_ms_per_call;

constexpr int64_t kRows = 16384;
constexpr int64_t kCols = 4096;
constexpr int kRepeats = 7;
constexpr int kCallsPerRepeat = 50;

constexpr const char* kUsage =
    "usage: gpu_bench [--device N] [--dump DIR]\n"
    "  JSON lines (bench \"gpu_copy\" and \"gpu_throughput\") and a table on stdout.\n"
    "  --dump DIR  write each row's last timed call (inputs, output) to DIR as .npy\n"
    "              files and DIR/manifest.jsonl, for torch_peer.py --check DIR\n";

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    check_cuda(cudaMalloc(&data_, bytes), "cudaMalloc");
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

  // Uniform in [-2, 2), as f32 or bf16: softmax and the norms see ordinary
  // rows, not zeros (which some kernels could shortcut).
  void fill_random(kiln::DType dtype, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> d(-2.0f, 2.0f);
    std::vector<uint8_t> host(bytes_);
    const size_t es = static_cast<size_t>(kiln::dtype_size(dtype));
    for (size_t i = 0; i + es <= bytes_; i += es) {
      const float v = d(rng);
      if (dtype == kiln::DType::bf16) {
        const uint16_t b = bf16_bits(v);
        std::memcpy(host.data() + i, &b, 2);
      } else {
        std::memcpy(host.data() + i, &v, 4);
      }
    }
    check_cuda(cudaMemcpy(data_, host.data(), bytes_, cudaMemcpyHostToDevice), "cudaMemcpy");
  }

 private:
  void* data_ = nullptr;
  size_t bytes_;
};

struct Row {
  std::string graph;  // "gelu_affine"
  kiln::DType dtype;
  std::string specialization;
  double ms = 0;
  double gbs = 0;
  std::string error;
};

DLTensor cuda_tensor(void* data, kiln::DType dtype, const int64_t* shape, int ndim, int device) {
  DLTensor t{};
  t.data = data;
  t.device = DLDevice{kDLCUDA, device};
  t.ndim = ndim;
  t.dtype = kiln::to_dlpack(dtype);
  t.shape = const_cast<int64_t*>(shape);
  return t;
}

int run(int device, const std::string& dump_dir) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || device >= count) {
    std::fprintf(stderr, "gpu_bench: no CUDA device %d\n", device);
    return 1;
  }
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  const kiln_gpu::DeviceInfo info = kiln_gpu::describe_device(device);
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");

  const size_t n = static_cast<size_t>(kRows * kCols);
  // Sized for f32; the bf16 rows use their first half. Two inputs, which
  // the calls alternate between: each call reads x from memory, as a model's
  // layer does, rather than what of it the previous call left in L2 (60 MB
  // on an H200, enough to lift a same-input loop past the copy ceiling when
  // a kernel asks L2 to keep x: measured 100.6% of copy).
  DeviceBuffer x(n * 4), x_other(n * 4), y(n * 4), a(kCols * 4), b(kCols * 4);

  const std::string meta = "\"device\":\"" + kiln_gpu::json_escape(info.name) + "\",\"driver\":\"" +
                           kiln_gpu::json_escape(info.driver) + "\",\"cuda\":\"" +
                           info.cuda_driver + "\",\"cuda_runtime\":\"" + info.cuda_runtime + "\"";

  // The copy ceiling: the f32 tensor's bytes, read once and written once.
  x.fill_random(kiln::DType::f32, 1);
  x_other.fill_random(kiln::DType::f32, 5);
  int copies = 0;
  auto copy = [&] {
    const void* from = (copies++ % 2 == 0 ? x : x_other).data();
    check_cuda(cudaMemcpyAsync(y.data(), from, n * 4, cudaMemcpyDeviceToDevice, stream),
               "cudaMemcpyAsync");
  };
  copy();
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  const double copy_ms = median_ms_per_call(copy, stream, kRepeats, kCallsPerRepeat);
  const double copy_gbs = 2.0 * static_cast<double>(n) * 4 / (copy_ms * 1e-3) / 1e9;
  std::printf("{\"bench\":\"gpu_copy\",\"bytes\":%zu,\"median_ms\":%.4f,\"gb_per_s\":%.1f,%s}\n",
              2 * n * 4, copy_ms, copy_gbs, meta.c_str());

  std::unique_ptr<kiln_gpu::OutputDump> dump;
  if (!dump_dir.empty()) dump = std::make_unique<kiln_gpu::OutputDump>(dump_dir);

  kiln::Package& package = gpu_test_kernels::loaded_package();
  const int64_t matrix[2] = {kRows, kCols};
  const int64_t vector[1] = {kCols};
  std::vector<Row> rows;
  bool any_error = false;
  for (kiln::DType dtype : {kiln::DType::f32, kiln::DType::bf16}) {
    x.fill_random(dtype, 2);
    x_other.fill_random(dtype, 6);
    a.fill_random(dtype, 3);
    b.fill_random(dtype, 4);
    const DLTensor X = cuda_tensor(x.data(), dtype, matrix, 2, device);
    const DLTensor X_other = cuda_tensor(x_other.data(), dtype, matrix, 2, device);
    const DLTensor Y = cuda_tensor(y.data(), dtype, matrix, 2, device);
    const DLTensor A = cuda_tensor(a.data(), dtype, vector, 1, device);
    const DLTensor B = cuda_tensor(b.data(), dtype, vector, 1, device);
    // The buffers' names in the dump: the parameter names of torch_peer.py's
    // functions (x_other binds x).
    const std::map<const DLTensor*, std::string> buffer_names = {
        {&X, "x"}, {&X_other, "x_other"}, {&A, "a"}, {&B, "b"}};
    const char* const parameter_names[] = {"x", "a", "b"};
    struct Case {
      const char* graph;
      std::vector<const DLTensor*> inputs;
      std::vector<const DLTensor*> other_inputs;  // x_other in x's place
    };
    const Case cases[] = {
        {"gelu_affine", {&X, &A, &B}, {&X_other, &A, &B}},
        {"softmax", {&X}, {&X_other}},
        {"layernorm", {&X, &A, &B}, {&X_other, &A, &B}},
        {"rmsnorm", {&X, &A}, {&X_other, &A}},
    };
    const std::vector<const DLTensor*> outputs = {&Y};
    for (const Case& c : cases) {
      Row row{c.graph, dtype, "-", 0, 0, ""};
      const std::string name = row.graph + "_" + std::string(kiln::dtype_name(dtype));
      try {
        kiln::Graph& graph = package.graph(name);
        row.specialization = std::string(graph.select(c.inputs, outputs));
        int calls = 0;
        auto launch = [&] {
          graph.call(calls++ % 2 == 0 ? c.inputs : c.other_inputs, outputs, stream);
        };
        // The first call loads the module; the next ones warm clocks and L2.
        for (int i = 0; i < 5; ++i) launch();
        check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize after warm-up");
        row.ms = median_ms_per_call(launch, stream, kRepeats, kCallsPerRepeat);
        if (dump) {
          // Y holds what the last call wrote; that call read the inputs of
          // its parity.
          const auto& last = (calls - 1) % 2 == 0 ? c.inputs : c.other_inputs;
          const std::string dt(kiln::dtype_name(dtype));
          std::vector<kiln_gpu::OutputDump::Tensor> inputs;
          for (size_t i = 0; i < last.size(); ++i) {
            inputs.push_back(
                {parameter_names[i], buffer_names.at(last[i]) + "_" + dt + ".npy", last[i]});
          }
          dump->add_row("\"suite\":\"throughput\",\"graph\":\"" + std::string(c.graph) +
                            "\",\"dtype\":\"" + dt + "\",\"specialization\":\"" +
                            kiln_gpu::json_escape(row.specialization) + "\"",
                        inputs, {"y", name + "_y.npy", &Y});
        }
        const double bytes = 2.0 * static_cast<double>(n) * kiln::dtype_size(dtype);
        row.gbs = bytes / (row.ms * 1e-3) / 1e9;
        std::printf(
            "{\"bench\":\"gpu_throughput\",\"graph\":\"%s\",\"kiln_graph\":\"%s\","
            "\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"specialization\":\"%s\","
            "\"median_ms\":%.4f,\"gb_per_s\":%.1f,\"copy_gb_per_s\":%.1f,"
            "\"fraction_of_copy\":%.4f,\"repeats\":%d,\"calls_per_repeat\":%d,%s}\n",
            c.graph, name.c_str(), std::string(kiln::dtype_name(dtype)).c_str(),
            static_cast<long long>(kRows), static_cast<long long>(kCols),
            kiln_gpu::json_escape(row.specialization).c_str(), row.ms, row.gbs, copy_gbs,
            row.gbs / copy_gbs, kRepeats, kCallsPerRepeat, meta.c_str());
      } catch (const kiln_gpu::CudaCallError& e) {
        // A fault is sticky: nothing after it would measure anything.
        std::fprintf(stderr, "gpu_bench: %s: %s\n", name.c_str(), e.what());
        return 1;
      } catch (const std::exception& e) {
        row.error = e.what();
        any_error = true;
        std::printf(
            "{\"bench\":\"gpu_throughput\",\"graph\":\"%s\",\"kiln_graph\":\"%s\","
            "\"dtype\":\"%s\",\"error\":\"%s\",%s}\n",
            c.graph, name.c_str(), std::string(kiln::dtype_name(dtype)).c_str(),
            kiln_gpu::json_escape(e.what()).c_str(), meta.c_str());
      }
      rows.push_back(row);
      std::fflush(stdout);
    }
  }

  std::printf("\n%s, driver %s, CUDA %s; %lldx%lld, median of %d x %d calls\n", info.name.c_str(),
              info.driver.c_str(), info.cuda_driver.c_str(), static_cast<long long>(kRows),
              static_cast<long long>(kCols), kRepeats, kCallsPerRepeat);
  std::printf("%-12s %-5s %-26s %10s %10s %10s\n", "graph", "dtype", "specialization", "ms/call",
              "GB/s", "% of copy");
  std::printf("%-12s %-5s %-26s %10.4f %10.1f %9.1f%%\n", "copy", "f32", "cudaMemcpyAsync D2D",
              copy_ms, copy_gbs, 100.0);
  for (const Row& r : rows) {
    const std::string dt(kiln::dtype_name(r.dtype));
    if (!r.error.empty()) {
      std::printf("%-12s %-5s error: %s\n", r.graph.c_str(), dt.c_str(), r.error.c_str());
      continue;
    }
    std::printf("%-12s %-5s %-26s %10.4f %10.1f %9.1f%%\n", r.graph.c_str(), dt.c_str(),
                r.specialization.c_str(), r.ms, r.gbs, 100 * r.gbs / copy_gbs);
  }
  cudaStreamDestroy(stream);
  return any_error ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Line by line through run.sh's tee, so a run cut short still shows how far it got.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int device = 0;
  std::string dump_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--dump" && i + 1 < argc) {
      dump_dir = argv[++i];
    } else if (arg == "--device" && i + 1 < argc) {
      char* end = nullptr;
      const long d = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || d < 0 || d > 1023) {
        std::fprintf(stderr, "gpu_bench: --device takes a device ordinal\n%s", kUsage);
        return 2;
      }
      device = static_cast<int>(d);
    } else if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "gpu_bench: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  try {
    return run(device, dump_dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_bench: %s\n", e.what());
    return 1;
  }
}
