// `kiln cache stats|prune|clear`: the JIT's on-disk cache, by the same rules
// the JIT uses (kiln/jit/cache_admin.h).
#include <cstdio>
#include <exception>
#include <string>

#include "commands.h"
#include "kiln/jit/cache_admin.h"

namespace kiln::cli {

int run_cache(std::string_view action, std::filesystem::path dir,
              std::optional<std::string_view> max_size) {
  try {
    if (dir.empty()) dir = jit::default_cache_dir();
    if (dir.empty()) {
      std::fprintf(stderr,
                   "kiln: cache: no cache directory: pass --dir or set KILN_CACHE_DIR, "
                   "XDG_CACHE_HOME or HOME\n");
      return 1;
    }
    if (action == "stats") {
      const jit::CacheStats s = jit::cache_stats(dir);
      const std::optional<uint64_t> cap = jit::cache_max_size_from_env();
      std::printf("cache directory: %s\nentries: %llu\nbytes: %llu\ntemp files: %llu\n",
                  dir.c_str(), static_cast<unsigned long long>(s.entries),
                  static_cast<unsigned long long>(s.bytes),
                  static_cast<unsigned long long>(s.temp_files));
      if (cap)
        std::printf("max size (KILN_CACHE_MAX_SIZE): %llu\n",
                    static_cast<unsigned long long>(*cap));
      // Summed over every process that used the directory.
      auto count = [&](const char* name) -> unsigned long long {
        const auto it = s.counters.find(name);
        return it != s.counters.end() ? it->second : 0;
      };
      std::printf(
          "disk hits: %llu\ncompiles: %llu\ncompile time: %.1f ms\n"
          "compile failures: %llu\ncorrupt entries: %llu\nuntrusted entries: %llu\n"
          "evictions: %llu\n",
          count("disk_hits"), count("compiles"), static_cast<double>(count("compile_ns")) / 1e6,
          count("compile_failures"), count("corrupt_entries"), count("untrusted_entries"),
          count("evictions"));
      std::printf("bypasses: %llu (store failed %llu, unsupported device %llu)\n",
                  count("bypass_store_failed") + count("bypass_unsupported_device"),
                  count("bypass_store_failed"), count("bypass_unsupported_device"));
      return 0;
    }
    if (action == "prune") {
      std::optional<uint64_t> cap = max_size ? std::optional(jit::parse_cache_size(*max_size))
                                             : jit::cache_max_size_from_env();
      if (!cap) {
        return usage_error(find_command("cache"),
                           "prune: expected --max-size SIZE or KILN_CACHE_MAX_SIZE, got neither");
      }
      const uint64_t removed = jit::prune_cache(dir, *cap);
      const jit::CacheStats s = jit::cache_stats(dir);
      std::printf("removed %llu entries; %llu entries, %llu bytes remain\n",
                  static_cast<unsigned long long>(removed),
                  static_cast<unsigned long long>(s.entries),
                  static_cast<unsigned long long>(s.bytes));
      return 0;
    }
    if (action == "clear") {
      std::printf("removed %llu entries\n", static_cast<unsigned long long>(jit::clear_cache(dir)));
      return 0;
    }
    return usage_error(find_command("cache"),
                       "expected stats, prune or clear, got '" + std::string(action) + "'");
  } catch (const std::exception& e) {
    return report_failure(e);
  }
}

}  // namespace kiln::cli
