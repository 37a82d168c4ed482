// Gemm library calls on a CUDA device: for each case a package is built by
// hand (tests/unit/test_support/gemm_test_package.h, a plan of one gemm for
// the device's arch) and called through the runtime on random inputs (never
// zero), aligned and one element off alignment, twice (the second call hits
// the algorithm cache); D is checked against the host reference
// (gemm_reference.h) within a bound that follows f32 accumulation, and its
// red zones must stay untouched. One JSON line per case, then
// "gpu_gemm: N passed, M failed". Exits 1 without a usable device: a run that
// checked nothing must not read as a pass.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <kiln/compiler/interpreter.h>
#include <kiln/package_reader.h>
#include <kiln/runtime.h>

#include "cuda_support.h"
#include "gpu_memory.h"
#include "test_support/gemm_reference.h"
#include "test_support/gemm_test_package.h"

namespace {

using kiln::DType;
using kiln::GemmEpilogue;
using kiln::GemmProblem;
using kiln::compiler::HostTensor;
using kiln_gpu::DeviceTensor;
using kiln_gpu::Layout;
using kiln_gpu::Memory;

constexpr const char* kUsage =
    "usage: gpu_gemm [--device N] [--quick]\n"
    "  Runs gemm library calls through cuBLASLt on a CUDA device and checks them against the\n"
    "  host reference. Exits non-zero on any failure, and 1 without a usable device.\n"
    "  --device N  the CUDA device (default 0)\n"
    "  --quick     skip the largest shape\n";

// The sizes of a case; lda and ldb are the stored row plus the padding,
// strides -1 for dense batches (one matrix after the other).
struct Shape {
  int64_t m, n, k, batch;
  bool trans_a, trans_b;
  int64_t pad_a, pad_b;
  int64_t stride_a, stride_b;
  double alpha;
  GemmEpilogue epilogue;
  bool large;  // left out by --quick
};

const Shape kShapes[] = {
    {1, 3, 17, 1, false, false, 0, 0, 0, 0, 1.0, GemmEpilogue::none, false},
    {3, 5, 17, 2, true, false, 0, 0, 0, -1, 0.5, GemmEpilogue::bias_relu, false},
    {7, 1, 6, 3, false, true, 0, 3, -1, -1, -1.25, GemmEpilogue::relu, false},
    {33, 65, 129, 1, true, true, 0, 0, 0, 0, 1.0, GemmEpilogue::bias, false},
    {16, 24, 40, 2, false, false, 9, 5, -1, 0, 2.0, GemmEpilogue::bias, false},
    {128, 256, 64, 4, false, false, 0, 0, -1, 0, 1.0, GemmEpilogue::none, false},
    {64, 96, 128, 3, true, false, 0, 0, 0, -1, 0.25, GemmEpilogue::relu, false},
    {4, 8, 0, 2, false, false, 0, 0, 0, 0, 1.0, GemmEpilogue::bias_relu, false},
    {5, 6, 0, 1, false, false, 0, 0, 0, 0, 1.0, GemmEpilogue::relu, false},
    {256, 512, 384, 1, false, true, 0, 0, 0, 0, 1.0, GemmEpilogue::bias_relu, true},
};

GemmProblem problem_of(const Shape& s, DType in, DType out) {
  GemmProblem p;
  p.a_dtype = p.b_dtype = in;
  p.d_dtype = out;
  p.m = s.m;
  p.n = s.n;
  p.k = s.k;
  p.batch = s.batch;
  p.trans_a = s.trans_a;
  p.trans_b = s.trans_b;
  p.lda = std::max<int64_t>(s.trans_a ? s.m : s.k, 1) + s.pad_a;
  p.ldb = std::max<int64_t>(s.trans_b ? s.k : s.n, 1) + s.pad_b;
  const int64_t one_a =
      kiln_test::gemm_matrix_elements(1, 0, s.trans_a ? s.k : s.m, s.trans_a ? s.m : s.k, p.lda);
  const int64_t one_b =
      kiln_test::gemm_matrix_elements(1, 0, s.trans_b ? s.n : s.k, s.trans_b ? s.k : s.n, p.ldb);
  p.stride_a = s.stride_a < 0 ? one_a : s.stride_a;
  p.stride_b = s.stride_b < 0 ? one_b : s.stride_b;
  p.alpha = s.alpha;
  p.epilogue = s.epilogue;
  return p;
}

std::string case_name(const GemmProblem& p) {
  std::string s = std::string(kiln::dtype_name(p.a_dtype)) + "->" +
                  std::string(kiln::dtype_name(p.d_dtype)) + " m" + std::to_string(p.m) + " n" +
                  std::to_string(p.n) + " k" + std::to_string(p.k) + " b" + std::to_string(p.batch);
  if (p.trans_a) s += " ta";
  if (p.trans_b) s += " tb";
  return s + " " + std::string(kiln::gemm_epilogue_name(p.epilogue));
}

// The error cuBLASLt's f32 accumulation may make, element by element: up
// to k + 4 roundings of f32 on the sum of the terms' magnitudes, plus one
// unit in the last place of D's dtype (the reference and cuBLASLt each round
// once), plus the smallest subnormal of a 16-bit D.
std::vector<double> tolerance(const GemmProblem& p, const std::vector<double>& a,
                              const std::vector<double>& b, const std::vector<double>& bias,
                              const std::vector<double>& want) {
  const double ulp = p.d_dtype == DType::f32 ? 0x1p-23 : p.d_dtype == DType::f16 ? 0x1p-10 : 0x1p-7;
  const double floor = p.d_dtype == DType::f16 ? 0x1p-24 : 0x1p-126;
  std::vector<double> tol(want.size());
  for (int64_t i = 0; i < p.batch; ++i) {
    for (int64_t r = 0; r < p.m; ++r) {
      for (int64_t c = 0; c < p.n; ++c) {
        double scale = 0;
        for (int64_t x = 0; x < p.k; ++x) {
          scale += std::abs(a[static_cast<size_t>(kiln_test::gemm_a_index(p, i, r, x))] *
                            b[static_cast<size_t>(kiln_test::gemm_b_index(p, i, x, c))]);
        }
        scale *= std::abs(p.alpha);
        const double product = scale;
        if (kiln::gemm_has_bias(p.epilogue)) scale += std::abs(bias[static_cast<size_t>(c)]);
        const auto e = static_cast<size_t>((i * p.m + r) * p.n + c);
        tol[e] = static_cast<double>(p.k + 4) * 0x1p-23 * scale + ulp * std::abs(want[e]) + floor;
        // cuBLASLt adds a bias to a 16-bit D after rounding the product to
        // D's type (measured on an H200: bf16 m33 n65 k129 missed a single
        // rounding by 1.4 tolerances where the two cancel): one more ulp of
        // the product. Kiln's compiler therefore adds 16-bit biases in a
        // kernel (docs/codegen.md); the runtime still runs such a call.
        if (kiln::gemm_has_bias(p.epilogue) && p.d_dtype != DType::f32) tol[e] += ulp * product;
      }
    }
  }
  return tol;
}

struct Outcome {
  bool passed = true;
  double worst = 0;  // the largest |got - want| / tolerance
  std::string why;
};

Outcome run_case(kiln::Package& package, Memory& memory, const GemmProblem& p, Layout layout,
                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  const HostTensor a =
      kiln::compiler::random_tensor(p.a_dtype, {kiln_test::gemm_a_elements(p)}, rng);
  const HostTensor b =
      kiln::compiler::random_tensor(p.b_dtype, {kiln_test::gemm_b_elements(p)}, rng);
  const bool bias = kiln::gemm_has_bias(p.epilogue);
  const HostTensor bias_values =
      bias ? kiln::compiler::random_tensor(p.d_dtype, {p.n}, rng) : HostTensor{};
  const std::vector<double> want =
      kiln_test::gemm_reference(p, a.values, b.values, bias_values.values);
  Outcome out;
  // All zeros would not show a kernel that wrote nothing over D's poison,
  // except for k = 0, where zeros (before the epilogue) are the answer and
  // the poison (never zero) still catches a missing write.
  if (p.k > 0 && !std::any_of(want.begin(), want.end(), [](double v) { return v != 0; })) {
    out.passed = false;
    out.why = "the reference is all zeros";
    return out;
  }
  const std::vector<double> tol = tolerance(p, a.values, b.values, bias_values.values, want);

  DeviceTensor da(memory, p.a_dtype, {a.numel()}, layout);
  DeviceTensor db(memory, p.b_dtype, {b.numel()}, layout);
  std::unique_ptr<DeviceTensor> dbias;
  DeviceTensor dd(memory, p.d_dtype, {kiln_test::gemm_d_elements(p)}, layout);
  da.upload(a.to_bytes());
  db.upload(b.to_bytes());
  std::vector<const DLTensor*> inputs = {da.dl(), db.dl()};
  if (bias) {
    dbias = std::make_unique<DeviceTensor>(memory, p.d_dtype, std::vector<int64_t>{p.n}, layout);
    dbias->upload(bias_values.to_bytes());
    inputs.push_back(dbias->dl());
  }
  const std::vector<const DLTensor*> outputs = {dd.dl()};
  kiln::Graph& graph = package.graph("gemm");
  std::vector<uint8_t> first;
  for (int call = 0; call < 2; ++call) {
    dd.poison();
    graph.call(inputs, outputs, memory.stream());
    memory.synchronize();
    if (!dd.red_zones_intact()) {
      out.passed = false;
      out.why = "D's red zones were written";
      return out;
    }
    const std::vector<uint8_t> bytes = dd.download();
    if (call == 0) {
      first = bytes;
    } else if (bytes != first) {
      out.passed = false;
      out.why = "the second call (an algorithm cache hit) gave other bytes";
      return out;
    }
  }
  const HostTensor got =
      HostTensor::from_bytes(p.d_dtype, {kiln_test::gemm_d_elements(p)}, first.data());
  for (size_t e = 0; e < want.size(); ++e) {
    const double ratio = std::abs(got.values[e] - want[e]) / tol[e];
    if (!(ratio <= out.worst)) {  // NaN counts as the worst
      out.worst = std::isnan(ratio) ? INFINITY : ratio;
      if (!(ratio <= 1)) {
        out.passed = false;
        char line[160];
        std::snprintf(line, sizeof line, "element %zu: got %.9g, want %.9g, tolerance %.3g", e,
                      got.values[e], want[e], tol[e]);
        out.why = line;
      }
    }
  }
  return out;
}

int run(int device, bool quick) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count <= device) {
    std::fprintf(stderr, "gpu_gemm: no CUDA device %d (%s); nothing was checked\n", device,
                 status != cudaSuccess ? cudaGetErrorString(status) : "too few devices");
    return 1;
  }
  const kiln_gpu::DeviceInfo info = kiln_gpu::describe_device(device);
  cudaDeviceProp prop{};
  kiln_gpu::check_cuda(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  const std::string target = "cuda:sm_" + std::to_string(prop.major * 10 + prop.minor);
  if (!kiln::is_known_target_name(target)) {
    std::fprintf(stderr,
                 "gpu_gemm: cuda:%d is %s, which Kiln does not target; nothing was checked\n",
                 device, target.c_str());
    return 1;
  }
  std::unique_ptr<Memory> memory = Memory::cuda(device);
  int passed = 0;
  int failed = 0;
  const std::pair<DType, DType> dtypes[] = {{DType::f32, DType::f32},
                                            {DType::f16, DType::f16},
                                            {DType::f16, DType::f32},
                                            {DType::bf16, DType::bf16},
                                            {DType::bf16, DType::f32}};
  uint64_t seed = 1;
  for (const Shape& s : kShapes) {
    if (quick && s.large) continue;
    for (const auto& [in, out] : dtypes) {
      const GemmProblem p = problem_of(s, in, out);
      const std::vector<uint8_t> bytes =
          kiln_test::write_gemm_test_package(kiln_test::make_gemm_test_package(p, {target}));
      kiln::OpenOptions options;
      options.stance = kiln::Stance::fail_on_recompile;
      kiln::Package package = kiln::Package::open_memory(std::as_bytes(std::span(bytes)), options);
      for (Layout layout : {Layout::aligned, Layout::misaligned_pointer}) {
        Outcome o;
        try {
          o = run_case(package, *memory, p, layout, seed++);
        } catch (const kiln_gpu::CudaCallError&) {
          throw;  // the context is gone: stop here
        } catch (const std::exception& e) {
          o.passed = false;
          o.why = e.what();
        }
        (o.passed ? passed : failed) += 1;
        std::printf(
            "{\"bench\":\"gpu_gemm\",\"case\":\"%s\",\"layout\":\"%s\",\"a\":\"%s\",\"d\":\"%s\","
            "\"m\":%lld,\"n\":%lld,\"k\":%lld,\"batch\":%lld,\"trans_a\":%s,\"trans_b\":%s,"
            "\"lda\":%lld,\"ldb\":%lld,\"stride_a\":%lld,\"stride_b\":%lld,\"alpha\":%g,"
            "\"epilogue\":\"%s\",\"worst_error_ratio\":%.4g,\"passed\":%s,\"why\":\"%s\","
            "\"device\":\"%s\"}\n",
            case_name(p).c_str(), std::string(kiln_gpu::layout_name(layout)).c_str(),
            std::string(kiln::dtype_name(p.a_dtype)).c_str(),
            std::string(kiln::dtype_name(p.d_dtype)).c_str(), static_cast<long long>(p.m),
            static_cast<long long>(p.n), static_cast<long long>(p.k),
            static_cast<long long>(p.batch), p.trans_a ? "true" : "false",
            p.trans_b ? "true" : "false", static_cast<long long>(p.lda),
            static_cast<long long>(p.ldb), static_cast<long long>(p.stride_a),
            static_cast<long long>(p.stride_b), p.alpha,
            kiln::gemm_epilogue_name(p.epilogue).data(), std::isinf(o.worst) ? 1e300 : o.worst,
            o.passed ? "true" : "false", kiln_gpu::json_escape(o.why).c_str(),
            kiln_gpu::json_escape(info.name).c_str());
      }
    }
  }
  std::printf("gpu_gemm: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int device = 0;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--device" && i + 1 < argc) {
      char* end = nullptr;
      const long d = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || d < 0 || d > 1023) {
        std::fprintf(stderr, "gpu_gemm: --device takes a device ordinal\n%s", kUsage);
        return 2;
      }
      device = static_cast<int>(d);
    } else if (arg == "--quick") {
      quick = true;
    } else if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "gpu_gemm: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  try {
    return run(device, quick);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_gemm: %s\n", e.what());
    return 1;
  }
}
