// `kiln merge BASE DELTA... -o OUT`: folds delta packages (what the JIT
// compiled, or another build's specializations) into the base, by the rules
// of kiln/compiler/package_merge.h.
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include "commands.h"
#include "kiln/compiler/package_merge.h"
#include "kiln/support/key_file.h"

namespace kiln::cli {

namespace {

std::string count(size_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

}  // namespace

int run_merge(const std::filesystem::path& base, std::span<const std::filesystem::path> deltas,
              const std::filesystem::path& out, std::optional<std::filesystem::path> key) {
  try {
    std::optional<support::SecretKeyFile> secret;
    if (key) secret = support::read_secret_key_file(*key);
    const compiler::MergeSummary s =
        compiler::merge_package_files(base, deltas, out, secret ? &secret->key : nullptr);
    std::printf(
        "merged %s into %s: %s (%zu extended), %s added, %zu skipped (already there), added %s, "
        "%s and %s, %s and %llu bytes in all\n",
        count(s.deltas, "delta").c_str(), out.c_str(), count(s.graphs, "graph").c_str(),
        s.graphs_extended, count(s.specializations_added, "specialization").c_str(),
        s.specializations_skipped, count(s.kernels_added, "kernel").c_str(),
        count(s.blobs_added, "blob").c_str(), count(s.targets_added, "target").c_str(),
        count(s.blobs, "blob").c_str(), static_cast<unsigned long long>(s.package_bytes));
    if (s.signer_key_id.empty()) {
      std::printf("%s is unsigned (no input's signature carries over; pass --key K to sign it)\n",
                  out.c_str());
    } else {
      std::printf("signed %s with key %s\n", out.c_str(), s.signer_key_id.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    // A kiln::Error, or the package writer's own checks (std::invalid_argument, ...).
    return report_failure(e);
  }
}

}  // namespace kiln::cli
