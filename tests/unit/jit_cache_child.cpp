// The second process of the JIT's multi-process tests (test_jit_cpu): opens
// the IR-only package, serves one call through a fresh FallbackJit whose cache
// directory comes from $KILN_CACHE_DIR (as in a deployment), checks the
// result against the interpreter, and prints the JIT's counters.
//
//   jit_cache_child CLANGXX   exit 0: correct result; 1: wrong; 2: an error
#include <cstdio>
#include <cstdlib>

#include "kiln/jit/fallback_jit.h"
#include "test_support/jit_test_graph.h"

int main(int argc, char** argv) {
  if (argc != 2 || std::getenv("KILN_CACHE_DIR") == nullptr) {
    std::fprintf(stderr, "usage: KILN_CACHE_DIR=DIR jit_cache_child CLANGXX\n");
    return 2;
  }
  try {
    const kiln::ir::Graph g = kiln::trace("norms", &kiln_test::jit_norms);
    const std::vector<uint8_t> bytes = kiln_test::ir_only_package(g);
    kiln::Package pkg = kiln::Package::open_memory(
        std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
    kiln::jit::FallbackJit jit({.cxx = argv[1]});
    kiln::set_jit_compiler(&jit);
    const std::string why = kiln_test::call_and_compare(pkg, g, 11, 12);
    kiln::set_jit_compiler(nullptr);
    std::printf("JIT compiles=%llu disk_hits=%llu cache_dir=%s\n",
                static_cast<unsigned long long>(jit.counters().compiles),
                static_cast<unsigned long long>(jit.counters().disk_hits), jit.cache_dir().c_str());
    if (!why.empty()) {
      std::printf("wrong result:\n%s", why.c_str());
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 2;
  }
}
