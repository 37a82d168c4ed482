// Exists only to link the whole runtime into a shared object whose stripped
// size the benchmark reports.
#include <kiln/runtime.h>

extern "C" __attribute__((visibility("default"))) void* kiln_runtime_size_probe() {
  return reinterpret_cast<void*>(&kiln::Package::open);
}
