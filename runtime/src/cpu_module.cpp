#include "cpu_module.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "kiln/error.h"
#include "kiln/support/env.h"
#include "text.h"

namespace kiln::detail {
namespace {

bool write_all(int fd, std::span<const std::byte> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string dl_error_text() {
  const char* text = dlerror();
  return text ? text : "unknown dlerror";
}

[[noreturn]] void load_failed(const std::string& message) {
  throw Error(ErrorCode::kernel_load_failed, message);
}

}  // namespace

CpuModule::CpuModule(std::span<const std::byte> image, const std::string& label) : label_(label) {
  std::string memfd_problem;
  int fd = ::memfd_create("kiln-cpu-kernels", MFD_CLOEXEC);
  if (fd >= 0) {
    if (write_all(fd, image)) {
      const std::string path = cat("/proc/self/fd/", fd);
      handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle_ != nullptr) {
        fd_ = fd;
      } else {
        memfd_problem = dl_error_text();
      }
    } else {
      memfd_problem = std::strerror(errno);
    }
    if (handle_ == nullptr) ::close(fd);
  }
  if (handle_ == nullptr) {
    // No memfd (old kernel, seccomp) or /proc not mounted: a private temp
    // file, unlinked as soon as it is loaded.
    std::string path = cat(support::env_value("TMPDIR").value_or("/tmp"), "/kiln-cpu-XXXXXX");
    int tmp = ::mkstemp(path.data());
    if (tmp < 0) {
      load_failed(cat("kiln: cannot load CPU kernels of ", label_, ": memfd failed (",
                      memfd_problem.empty() ? std::strerror(errno) : memfd_problem,
                      ") and no temp file in ", path));
    }
    const bool written = write_all(tmp, image);
    ::close(tmp);
    if (written) handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    const std::string error = written ? (handle_ ? "" : dl_error_text()) : "write failed";
    ::unlink(path.c_str());
    if (handle_ == nullptr) {
      load_failed(cat("kiln: cannot load CPU kernels of ", label_, ": ", error,
                      memfd_problem.empty() ? "" : " (memfd: " + memfd_problem + ")"));
    }
  }
  dlerror();
  auto version = reinterpret_cast<KilnCpuAbiVersionFn>(::dlsym(handle_, "kiln_cpu_abi_version"));
  if (version == nullptr || version() != KILN_CPU_ABI_VERSION) {
    std::string found = version ? cat("ABI version ", version()) : "no kiln_cpu_abi_version()";
    ::dlclose(handle_);
    handle_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    load_failed(cat("kiln: CPU kernels of ", label_, " have ", found, "; this runtime needs ABI ",
                    KILN_CPU_ABI_VERSION));
  }
}

CpuModule::~CpuModule() {
  if (handle_ != nullptr) ::dlclose(handle_);
  if (fd_ >= 0) ::close(fd_);
}

KilnCpuKernelFn CpuModule::resolve(const char* entry, const std::string& kernel_name) const {
  dlerror();
  void* symbol = ::dlsym(handle_, entry);
  if (symbol == nullptr) {
    load_failed(cat("kiln: kernel '", kernel_name, "': entry '", entry, "' not found in ", label_,
                    ": ", dl_error_text()));
  }
  return reinterpret_cast<KilnCpuKernelFn>(symbol);
}

}  // namespace kiln::detail
