// The x86-64 micro-architecture level of this CPU, detected once; CPU
// targets of a package are chosen by it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace kiln::detail {

enum class CpuLevel : uint8_t { none = 0, x86_64 = 1, x86_64_v2 = 2, x86_64_v3 = 3, x86_64_v4 = 4 };

// Detected on first use. $KILN_CPU_LEVEL ("x86-64-v2", ...) lowers it, to
// exercise a package's older targets on a newer machine.
CpuLevel host_cpu_level() noexcept;

std::string_view cpu_level_name(CpuLevel level) noexcept;
// "x86-64-v3" -> x86_64_v3; nullopt for anything else.
std::optional<CpuLevel> cpu_level_from_arch(std::string_view arch) noexcept;

}  // namespace kiln::detail
