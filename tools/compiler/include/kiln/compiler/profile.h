// Profile-guided specializations: the shapes .kprof profiles recorded
// (kiln/profile_format.h, docs/profile.md), checked against the graphs a
// build declares, each valid tuple to become a static specialization.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kiln/compiler/ir.h"

namespace kiln::compiler {

// At most this many profiled shapes per graph become specializations: the
// most called ones.
inline constexpr size_t kMaxProfiledSpecializations = 64;

struct ProfiledShape {
  ir::SymbolValues values;  // one per symbol, in the graph's symbol order
  uint64_t count = 0;       // calls, summed over every profile
  std::string where;        // "prod.kprof:7", the first line that recorded it
};

struct ProfiledShapes {
  // By graph name: the shapes to precompile, sorted by values.
  std::map<std::string, std::vector<ProfiledShape>> by_graph;
  // What was skipped and why, one line each, naming the graph (and the
  // shape and where it was recorded, when it is about one shape).
  std::vector<std::string> warnings;
};

// Reads every profile and keeps, per graph of `graphs` (canonical, with
// unique names), the recorded tuples that fit it. Skipped with a warning: a
// graph the profiles name but `graphs` does not declare; shapes recorded
// for another structure hash (the graph changed since); a tuple whose
// symbols are not the graph's, or a value outside its symbol's declared
// range or divisibility; shapes past kMaxProfiledSpecializations.
// Throws kiln::profile::FormatError (file, line, expected and got) for a
// malformed profile, std::runtime_error naming a file that cannot be read.
ProfiledShapes read_profiled_shapes(const std::vector<std::filesystem::path>& profiles,
                                    const std::vector<ir::Graph>& graphs);

}  // namespace kiln::compiler
