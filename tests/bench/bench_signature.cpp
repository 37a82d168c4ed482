// What checking a package's signature adds to opening it: the 10,000-sin
// package opened unsigned, signed (the reader verifies the signature), and
// signed with its key trusted (OpenOptions::trusted_key_files: the key file
// read and the signer matched too). The three opens are interleaved in each
// repetition, so the machine's drift hits them alike; each row gives the
// medians and the median of the per-repetition differences. Target: at most
// 1 ms added (issue 16). Opening is Package::open plus the graph lookup, as
// bench_load's open_verify_ms.
// Usage: bench_signature [--reps N] UNSIGNED.kiln SIGNED.kiln KEY.pub
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <kiln/runtime.h>

#include "bench_util.h"

namespace {

double open_seconds(const std::string& path, const kiln::OpenOptions& options) {
  const double t0 = kiln_bench::now_seconds();
  kiln::Package pkg = kiln::Package::open(path, options);
  kiln::Graph& g = pkg.graph(pkg.graph_names().front());
  const double t1 = kiln_bench::now_seconds();
  if (g.num_inputs() == 0) std::abort();  // keeps the lookup
  return t1 - t0;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 200;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      paths.push_back(arg);
    }
  }
  if (paths.size() != 3 || reps < 1) {
    std::fprintf(stderr, "usage: %s [--reps N] UNSIGNED.kiln SIGNED.kiln KEY.pub\n", argv[0]);
    return 2;
  }
  const std::string& unsigned_path = paths[0];
  const std::string& signed_path = paths[1];
  kiln::OpenOptions trusted;
  trusted.trusted_key_files = {paths[2]};
  // Each once before timing: page cache, the kernels' first dlopen, and the
  // check that the signed package does open with its key.
  open_seconds(unsigned_path, {});
  open_seconds(signed_path, trusted);

  std::vector<double> plain, verified, trusted_open, added, added_trusted;
  for (int r = 0; r < reps; ++r) {
    const double a = open_seconds(unsigned_path, {});
    const double b = open_seconds(signed_path, {});
    const double c = open_seconds(signed_path, trusted);
    plain.push_back(a);
    verified.push_back(b);
    trusted_open.push_back(c);
    added.push_back(b - a);
    added_trusted.push_back(c - a);
  }
  const auto ms = [](const std::vector<double>& v) { return 1e3 * kiln_bench::median(v); };
  std::printf(
      "{\"bench\":\"signature_open\",\"package\":\"%s\",\"package_bytes\":%ju,\"reps\":%d,"
      "\"unsigned_open_ms\":%.4f,\"signed_open_ms\":%.4f,\"signed_trusted_open_ms\":%.4f,"
      "\"added_ms\":%.4f,\"added_trusted_ms\":%.4f,\"target_added_ms\":1}\n",
      std::filesystem::path(unsigned_path).stem().c_str(),
      static_cast<uintmax_t>(std::filesystem::file_size(unsigned_path)), reps, ms(plain),
      ms(verified), ms(trusted_open), ms(added), ms(added_trusted));
  std::printf(
      "\nopen + graph lookup, medians of %d interleaved repetitions:\n"
      "  unsigned                      %8.4f ms\n"
      "  signed (signature verified)   %8.4f ms   added %.4f ms\n"
      "  signed, its key trusted       %8.4f ms   added %.4f ms\n"
      "target: at most 1 ms added\n",
      reps, ms(plain), ms(verified), ms(added), ms(trusted_open), ms(added_trusted));
  return 0;
}
