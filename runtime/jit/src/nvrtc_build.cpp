#include "nvrtc_build.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <string_view>
#include <system_error>
#include <thread>

#include "kiln/jit/jit_error.h"
#include "nvrtc_library.h"

namespace kiln::jit::detail {
namespace {

// Destroys the program on every path out.
class Program {
 public:
  Program(const NvrtcLibrary& nvrtc, nvrtcProgram program) : nvrtc_(nvrtc), program_(program) {}
  ~Program() { nvrtc_.nvrtcDestroyProgram(&program_); }
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;
  nvrtcProgram get() const { return program_; }

 private:
  const NvrtcLibrary& nvrtc_;
  nvrtcProgram program_;
};

std::string kernel_context(const std::string& entry, int arch, bool ptx) {
  return "kernel '" + entry + "' for " + (ptx ? "compute_" : "sm_") + std::to_string(arch);
}

std::string program_log(const NvrtcLibrary& nvrtc, nvrtcProgram program) {
  size_t size = 0;
  if (nvrtc.nvrtcGetProgramLogSize(program, &size) != kNvrtcSuccess || size == 0) return "";
  std::string log(size, '\0');
  if (nvrtc.nvrtcGetProgramLog(program, log.data()) != kNvrtcSuccess) return "";
  log.resize(std::strlen(log.c_str()));  // the size counts the terminating NUL
  while (!log.empty() && (log.back() == '\n' || log.back() == ' ')) log.pop_back();
  return log;
}

// Whether `image` holds `name` as a whole NUL-terminated string, as an ELF
// string table holds symbol names: a cheap check that the kernel the launch
// plan names is in the cubin, without parsing the ELF.
bool has_string(const std::vector<std::byte>& image, const std::string& name) {
  std::string needle(1, '\0');
  needle += name;
  needle += '\0';
  const std::string_view haystack(reinterpret_cast<const char*>(image.data()), image.size());
  return haystack.find(needle) != std::string_view::npos;
}

void check_arch(const NvrtcLibrary& nvrtc, int arch, const std::string& context,
                const std::string& graph) {
  if (std::find(nvrtc.archs.begin(), nvrtc.archs.end(), arch) != nvrtc.archs.end()) return;
  std::string supported;
  for (int a : nvrtc.archs) supported += (supported.empty() ? "" : ", ") + std::to_string(a);
  throw JitCompileError(graph,
                        context + ": " + nvrtc.version() + " (" + nvrtc.path +
                            ") cannot compile for arch " + std::to_string(arch) +
                            " (expected one of " + supported + ")",
                        -1, "");
}

std::vector<std::byte> compile(const std::string& source, const std::string& entry, int arch,
                               bool ptx, const std::string& graph) {
  const NvrtcLibrary& nvrtc = NvrtcLibrary::get(graph);
  const std::string context = kernel_context(entry, arch, ptx);
  check_arch(nvrtc, arch, context, graph);
  auto fail = [&](const std::string& call, nvrtcResult r, std::string log) {
    throw JitCompileError(graph,
                          context + ": " + call + " (" + nvrtc.version() + ") returned " +
                              nvrtc.result_text(r) + " (expected NVRTC_SUCCESS)",
                          r, std::move(log));
  };
  nvrtcProgram raw = nullptr;
  // Named after the kernel, so NVRTC's diagnostics point at "<entry>.cu(12)".
  const std::string name = entry + ".cu";
  if (const nvrtcResult r =
          nvrtc.nvrtcCreateProgram(&raw, source.c_str(), name.c_str(), 0, nullptr, nullptr);
      r != kNvrtcSuccess) {
    fail("nvrtcCreateProgram", r, "");
  }
  const Program program(nvrtc, raw);
  const std::vector<std::string> options = nvrtc_options(arch, ptx);
  std::vector<const char*> argv;
  argv.reserve(options.size());
  for (const std::string& o : options) argv.push_back(o.c_str());
  if (const nvrtcResult r =
          nvrtc.nvrtcCompileProgram(program.get(), static_cast<int>(argv.size()), argv.data());
      r != kNvrtcSuccess) {
    fail("nvrtcCompileProgram", r, program_log(nvrtc, program.get()));
  }
  size_t size = 0;
  const auto get_size = ptx ? nvrtc.nvrtcGetPTXSize : nvrtc.nvrtcGetCUBINSize;
  if (const nvrtcResult r = get_size(program.get(), &size); r != kNvrtcSuccess) {
    fail(ptx ? "nvrtcGetPTXSize" : "nvrtcGetCUBINSize", r, "");
  }
  std::vector<std::byte> out(size);
  const auto get = ptx ? nvrtc.nvrtcGetPTX : nvrtc.nvrtcGetCUBIN;
  if (const nvrtcResult r = get(program.get(), reinterpret_cast<char*>(out.data()));
      r != kNvrtcSuccess) {
    fail(ptx ? "nvrtcGetPTX" : "nvrtcGetCUBIN", r, "");
  }
  if (ptx) {
    // NVRTC's size counts the NUL; keep exactly one, as the package's PTX blobs do.
    while (!out.empty() && out.back() == std::byte{0}) out.pop_back();
    const std::string_view text(reinterpret_cast<const char*>(out.data()), out.size());
    if (text.find(".entry " + entry + "(") == std::string_view::npos) {
      throw JitCompileError(graph, context + ": NVRTC's PTX has no .entry " + entry, -1, "");
    }
    out.push_back(std::byte{0});
    return out;
  }
  constexpr unsigned char kElfMagic[4] = {0x7f, 'E', 'L', 'F'};
  if (out.size() < 4 || std::memcmp(out.data(), kElfMagic, 4) != 0) {
    throw JitCompileError(graph,
                          context + ": NVRTC returned " + std::to_string(out.size()) +
                              " bytes that are not an ELF cubin (expected the magic 7f 45 4c 46)",
                          -1, "");
  }
  if (!has_string(out, entry)) {
    throw JitCompileError(graph, context + ": the cubin has no symbol named '" + entry + "'", -1,
                          "");
  }
  return out;
}

}  // namespace

std::vector<std::string> nvrtc_options(int arch, bool ptx) {
  return {"--gpu-architecture=" + std::string(ptx ? "compute_" : "sm_") + std::to_string(arch),
          "-std=c++17",
          "--fmad=true",
          "--prec-div=true",
          "--prec-sqrt=true",
          "--ftz=false"};
}

std::vector<std::byte> build_cubin(const std::string& source, const std::string& entry, int arch,
                                   const std::string& graph) {
  return compile(source, entry, arch, false, graph);
}

std::vector<std::byte> build_ptx(const std::string& source, const std::string& entry, int arch,
                                 const std::string& graph) {
  return compile(source, entry, arch, true, graph);
}

std::vector<std::vector<std::byte>> build_cubins(const std::vector<compiler::CudaKernel>& kernels,
                                                 int arch, const std::string& graph,
                                                 unsigned max_threads) {
  if (kernels.empty()) return {};
  // Loaded (or its failure thrown) here, before any thread starts.
  NvrtcLibrary::get(graph);
  std::vector<std::vector<std::byte>> cubins(kernels.size());
  std::vector<std::exception_ptr> errors(kernels.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  // Kernels are claimed in index order, so when kernel j fails every kernel
  // before it has been claimed and runs to the end: the first failing
  // kernel's error is always the one recorded first in `errors` order.
  auto work = [&] {
    while (!failed.load(std::memory_order_relaxed)) {
      const size_t k = next.fetch_add(1);
      if (k >= kernels.size()) return;
      try {
        cubins[k] = build_cubin(kernels[k].source, kernels[k].entry, arch, graph);
      } catch (...) {
        errors[k] = std::current_exception();
        failed.store(true, std::memory_order_relaxed);
      }
    }
  };
  unsigned threads = max_threads != 0 ? max_threads : std::thread::hardware_concurrency();
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(kernels.size())));
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (unsigned t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // no more threads now: fewer workers is slower, not wrong
    }
  }
  work();  // the calling thread is one of the workers
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return cubins;
}

}  // namespace kiln::jit::detail
