#include "kiln/compiler/profile.h"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <utility>

#include "kiln/compiler/hash.h"
#include "kiln/profile_format.h"
#include "kiln/support/file_io.h"

namespace kiln::compiler {
namespace {

struct Recorded {
  profile::Entry entry;
  std::string where;  // "file:line"
};

// "n=8,m=64", as a static specialization of those values is named.
std::string shape_text(const profile::Entry& e) {
  std::string s;
  for (const auto& [name, value] : e.values) {
    if (!s.empty()) s += ",";
    s += name + "=" + std::to_string(value);
  }
  return s.empty() ? "(no symbols)" : s;
}

std::string hash_hex(const profile::StructureHash& h) { return Hash128{h.lo, h.hi}.hex(); }

// The tuple as one value per symbol of `g`, or nullopt with the reason it
// cannot be a specialization of `g` in `why`.
std::optional<ir::SymbolValues> fit(const ir::Graph& g, const profile::Entry& e, std::string& why) {
  ir::SymbolValues values(g.symbols.size(), -1);
  for (const auto& [name, value] : e.values) {
    const auto s = std::find_if(g.symbols.begin(), g.symbols.end(),
                                [&](const ir::SymbolDecl& d) { return d.name == name; });
    if (s == g.symbols.end()) {
      std::string known;
      for (const auto& d : g.symbols) known += (known.empty() ? "" : ", ") + d.name;
      why = "symbol '" + name + "' is not one of the graph's (" +
            (known.empty() ? std::string("it has none") : known) + ")";
      return std::nullopt;
    }
    values[static_cast<size_t>(s - g.symbols.begin())] = value;
  }
  for (size_t s = 0; s < values.size(); ++s) {
    const ir::SymbolDecl& d = g.symbols[s];
    const int64_t v = values[s];
    if (v < 0) {
      why = "no value for symbol '" + d.name + "'";
      return std::nullopt;
    }
    if (v < d.min || v > d.max) {
      why = d.name + " = " + std::to_string(v) + " is outside its declared range [" +
            std::to_string(d.min) + ", " + std::to_string(d.max) + "]";
      return std::nullopt;
    }
    if (d.divisible_by > 1 && v % d.divisible_by != 0) {
      why = d.name + " = " + std::to_string(v) + " is not divisible by " +
            std::to_string(d.divisible_by) + " as declared";
      return std::nullopt;
    }
  }
  return values;
}

uint64_t saturating_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

}  // namespace

ProfiledShapes read_profiled_shapes(const std::vector<std::filesystem::path>& profiles,
                                    const std::vector<ir::Graph>& graphs) {
  std::map<std::string, std::vector<Recorded>> recorded;
  for (const auto& file : profiles) {
    std::optional<std::string> text;
    try {
      text = support::read_file(file, profile::kMaxFileBytes);
    } catch (const support::FileError& e) {
      throw std::runtime_error("kiln: cannot read profile '" + file.string() + "': " + e.reason());
    }
    if (!text) throw std::runtime_error("kiln: cannot read profile '" + file.string() + "'");
    const profile::Profile parsed = profile::parse(*text, file.string());
    for (const profile::Line& line : parsed.lines()) {
      Recorded r{profile::decode(line), file.string() + ":" + std::to_string(line.line)};
      recorded[r.entry.graph].push_back(std::move(r));
    }
  }

  ProfiledShapes out;
  for (const auto& [name, entries] : recorded) {
    const auto graph = std::find_if(graphs.begin(), graphs.end(),
                                    [&](const ir::Graph& g) { return g.name == name; });
    if (graph == graphs.end()) {
      out.warnings.push_back("profile: graph '" + name + "' (" + std::to_string(entries.size()) +
                             " shapes, first at " + entries.front().where +
                             ") is not declared by this build; skipped");
      continue;
    }
    const Hash128 structure = structure_hash(*graph);
    // Shapes of an older (or newer) version of the graph, by structure.
    std::map<std::string, std::pair<size_t, std::string>> stale;
    std::map<ir::SymbolValues, ProfiledShape> shapes;
    for (const Recorded& r : entries) {
      if (r.entry.structure != profile::StructureHash{structure.hi, structure.lo}) {
        auto& [count, where] = stale[hash_hex(r.entry.structure)];
        if (count++ == 0) where = r.where;
        continue;
      }
      std::string why;
      const std::optional<ir::SymbolValues> values = fit(*graph, r.entry, why);
      if (!values) {
        out.warnings.push_back("profile " + r.where + ": graph '" + name + "' shape " +
                               shape_text(r.entry) + ": " + why + "; skipped");
        continue;
      }
      auto [at, added] = shapes.try_emplace(*values, ProfiledShape{*values, 0, r.where});
      at->second.count = saturating_add(at->second.count, r.entry.count);
    }
    for (const auto& [hash, first] : stale) {
      out.warnings.push_back("profile: graph '" + name + "' changed since it was profiled: " +
                             std::to_string(first.first) + " shapes recorded for structure " +
                             hash + " (first at " + first.second + "), but its structure is now " +
                             structure.hex() + "; skipped");
    }
    std::vector<ProfiledShape> kept;
    for (auto& [values, shape] : shapes) kept.push_back(std::move(shape));
    if (kept.size() > kMaxProfiledSpecializations) {
      // The most called, ties to the smaller values (kept is in value order).
      std::stable_sort(kept.begin(), kept.end(),
                       [](const auto& a, const auto& b) { return a.count > b.count; });
      out.warnings.push_back(
          "profile: graph '" + name + "': " + std::to_string(kept.size()) +
          " profiled shapes; precompiling the " + std::to_string(kMaxProfiledSpecializations) +
          " most called (" + std::to_string(kept[kMaxProfiledSpecializations - 1].count) +
          " calls or more), skipping " + std::to_string(kept.size() - kMaxProfiledSpecializations));
      kept.resize(kMaxProfiledSpecializations);
      std::sort(kept.begin(), kept.end(),
                [](const auto& a, const auto& b) { return a.values < b.values; });
    }
    if (!kept.empty()) out.by_graph[name] = std::move(kept);
  }
  return out;
}

}  // namespace kiln::compiler
