#include "cpu_features.h"

#include "kiln/support/env.h"

namespace kiln::detail {
namespace {

CpuLevel detect() noexcept {
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool v2 = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt") &&
                  __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1");
  // f16c, movbe and lzcnt are not names every compiler's
  // __builtin_cpu_supports knows; every CPU with avx2+fma+bmi2 has them.
  const bool v3 = v2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
                  __builtin_cpu_supports("avx");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl");
  if (v4) return CpuLevel::x86_64_v4;
  if (v3) return CpuLevel::x86_64_v3;
  if (v2) return CpuLevel::x86_64_v2;
  return CpuLevel::x86_64;
#else
  return CpuLevel::none;
#endif
}

}  // namespace

CpuLevel host_cpu_level() noexcept {
  static const CpuLevel level = [] {
    CpuLevel detected = detect();
    if (const auto cap = support::env_value("KILN_CPU_LEVEL")) {
      if (auto wanted = cpu_level_from_arch(*cap); wanted && *wanted < detected) return *wanted;
    }
    return detected;
  }();
  return level;
}

std::string_view cpu_level_name(CpuLevel level) noexcept {
  switch (level) {
    case CpuLevel::none:
      return "not x86-64";
    case CpuLevel::x86_64:
      return "x86-64";
    case CpuLevel::x86_64_v2:
      return "x86-64-v2";
    case CpuLevel::x86_64_v3:
      return "x86-64-v3";
    case CpuLevel::x86_64_v4:
      return "x86-64-v4";
  }
  return "?";
}

std::optional<CpuLevel> cpu_level_from_arch(std::string_view arch) noexcept {
  if (arch == "x86-64") return CpuLevel::x86_64;
  if (arch == "x86-64-v2") return CpuLevel::x86_64_v2;
  if (arch == "x86-64-v3") return CpuLevel::x86_64_v3;
  if (arch == "x86-64-v4") return CpuLevel::x86_64_v4;
  return std::nullopt;
}

}  // namespace kiln::detail
