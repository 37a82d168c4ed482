// The generator's first stages: its inputs checked, the targets of each
// graph chosen, and the specializations planned (generator_stages.h).
#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/compiler/cpu_codegen.h"
#include "kiln/compiler/cuda_codegen.h"
#include "kiln/compiler/generator.h"
#include "kiln/compiler/generator_stages.h"

namespace kiln::compiler {
namespace {

constexpr size_t kMaxStaticSpecializations = 64;

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

int cuda_arch_number(const std::string& arch) { return std::stoi(arch.substr(3)); }

}  // namespace

TargetSpec parse_target(const std::string& name) {
  static const char* kCpuLevels[] = {"x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"};
  const auto colon = name.find(':');
  const std::string kind = name.substr(0, colon);
  const std::string arch = colon == std::string::npos ? "" : name.substr(colon + 1);
  if (kind == "cpu") {
    for (const char* level : kCpuLevels) {
      if (arch == level) return TargetSpec{name, false, arch};
    }
    throw std::invalid_argument(
        "kiln: target '" + name +
        "': expected cpu:x86-64, cpu:x86-64-v2, cpu:x86-64-v3 or cpu:x86-64-v4");
  }
  if (kind == "cuda") {
    const bool digits = arch.size() >= 5 && arch.size() <= 6 && arch.rfind("sm_", 0) == 0 &&
                        std::all_of(arch.begin() + 3, arch.end(), [](char c) {
                          return std::isdigit(static_cast<unsigned char>(c));
                        });
    if (!digits || arch[3] == '0' || std::stoi(arch.substr(3)) < 50) {
      throw std::invalid_argument("kiln: target '" + name +
                                  "': expected cuda:sm_<NN> with NN >= 50, e.g. cuda:sm_90");
    }
    return TargetSpec{name, true, arch};
  }
  throw std::invalid_argument("kiln: target '" + name + "': expected cpu:<level> or cuda:sm_<NN>");
}

std::vector<ir::SymbolValues> enumerate_specializations(
    const ir::Graph& g, const std::vector<ir::SymbolValues>& profiled, bool with_general) {
  std::vector<ir::SymbolValues> statics = {ir::SymbolValues(g.symbols.size(), -1)};
  bool any_hot = false;
  for (size_t s = 0; s < g.symbols.size(); ++s) {
    const auto& hot = g.symbols[s].hot;
    if (hot.empty()) continue;
    any_hot = true;
    std::vector<ir::SymbolValues> next;
    for (const auto& base : statics) {
      for (int64_t v : hot) {
        next.push_back(base);
        next.back()[s] = v;
      }
    }
    statics = std::move(next);
    if (statics.size() > kMaxStaticSpecializations) {
      throw std::invalid_argument("kiln: graph '" + g.name + "': the hot values give more than " +
                                  std::to_string(kMaxStaticSpecializations) +
                                  " static specializations; declare fewer");
    }
  }
  std::vector<ir::SymbolValues> out;
  if (any_hot) out = statics;
  const ir::SymbolValues general(g.symbols.size(), -1);
  for (const auto& values : profiled) {
    if (values.size() != g.symbols.size()) {
      throw std::invalid_argument("kiln: graph '" + g.name + "': a profiled tuple has " +
                                  std::to_string(values.size()) + " values, expected one per " +
                                  "symbol (" + std::to_string(g.symbols.size()) + ")");
    }
    if (values != general && std::find(out.begin(), out.end(), values) == out.end()) {
      out.push_back(values);
    }
  }
  // Every hot combination fixes the same symbols, so this only moves
  // profiled tuples (which fix all) ahead of partly dynamic combinations.
  const auto fixed = [](const ir::SymbolValues& v) {
    return std::count_if(v.begin(), v.end(), [](int64_t x) { return x >= 0; });
  };
  std::stable_sort(out.begin(), out.end(),
                   [&](const auto& a, const auto& b) { return fixed(a) > fixed(b); });
  // The general specialization catches every shape the statics miss; with no
  // symbols it is the only one and is fully static.
  if (with_general || g.symbols.empty()) out.push_back(general);
  return out;
}

size_t op_count(const ir::Graph& g) { return g.nodes.size() - g.inputs.size(); }

std::string specialization_name(const ir::Graph& g, const ir::SymbolValues& values) {
  std::string name;
  bool dynamic = false;
  for (size_t s = 0; s < values.size(); ++s) {
    if (values[s] < 0) {
      dynamic = true;
      continue;
    }
    if (!name.empty()) name += ",";
    name += g.symbols[s].name + "=" + std::to_string(values[s]);
  }
  if (name.empty()) return g.symbols.empty() ? "static" : "general";
  return dynamic ? name + ",rest dynamic" : name;
}

GeneratorInputs prepare_inputs(const GeneratorOptions& options,
                               const std::vector<ir::Graph>& traced) {
  if (options.name.empty()) throw std::invalid_argument("kiln: --name is required");
  if (options.targets.empty()) throw std::invalid_argument("kiln: at least one target is required");
  GeneratorInputs inputs;
  std::vector<TargetSpec>& targets = inputs.targets;
  for (const auto& t : options.targets) {
    TargetSpec spec = parse_target(t);
    for (const auto& seen : targets) {
      if (seen.name == spec.name)
        throw std::invalid_argument("kiln: target '" + t + "' given twice");
    }
    targets.push_back(std::move(spec));
  }
  if (traced.empty()) throw std::invalid_argument("kiln: no graphs to build (no KILN_GRAPH found)");

  std::vector<ir::Graph>& graphs = inputs.graphs;
  graphs.reserve(traced.size());
  for (const auto& g : traced) graphs.push_back(ir::canonicalize(g));
  std::sort(graphs.begin(), graphs.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (size_t i = 1; i < graphs.size(); ++i) {
    if (graphs[i].name == graphs[i - 1].name) {
      throw std::invalid_argument("kiln: graph '" + graphs[i].name + "' is declared twice");
    }
  }
  for (const auto& g : graphs) {
    std::vector<bool> used(g.symbols.size(), false);
    for (int32_t id : g.inputs) {
      for (const auto& d : g.node(id).shape) {
        if (!d.is_constant()) used[static_cast<size_t>(d.sym)] = true;
      }
    }
    for (size_t s = 0; s < used.size(); ++s) {
      if (!used[s]) {
        throw std::invalid_argument("kiln: graph '" + g.name + "': symbol '" + g.symbols[s].name +
                                    "' is used by no input, so no call could bind it");
      }
    }
  }

  return inputs;
}

GraphTargetChoice choose_graph_targets(const GeneratorInputs& inputs, const GeneratorOptions& o) {
  const std::vector<TargetSpec>& targets = inputs.targets;
  const std::vector<ir::Graph>& graphs = inputs.graphs;
  GraphTargetChoice choice;
  std::vector<std::string>& warnings = choice.warnings;
  std::vector<std::string> package_targets;
  package_targets.reserve(targets.size());
  for (const auto& t : targets) package_targets.push_back(t.name);
  std::vector<std::string> graph_names;
  graph_names.reserve(graphs.size());
  for (const auto& g : graphs) graph_names.push_back(g.name);
  for (const auto& [name, listed] : o.graph_targets) {
    if (std::find(graph_names.begin(), graph_names.end(), name) == graph_names.end()) {
      throw std::invalid_argument("kiln: GRAPH_TARGETS (--graph-targets) names graph '" + name +
                                  "', which no KILN_GRAPH of this package declares (its graphs: " +
                                  join(graph_names, ", ") + ")");
    }
    if (listed.empty()) {
      throw std::invalid_argument("kiln: GRAPH_TARGETS (--graph-targets) for graph '" + name +
                                  "' lists no target");
    }
    for (size_t i = 0; i < listed.size(); ++i) {
      if (std::find(package_targets.begin(), package_targets.end(), listed[i]) ==
          package_targets.end()) {
        throw std::invalid_argument(
            "kiln: GRAPH_TARGETS (--graph-targets) for graph '" + name + "' lists '" + listed[i] +
            "', which is not one of the package's targets (" + join(package_targets, ", ") + ")");
      }
      if (std::find(listed.begin(), listed.begin() + static_cast<std::ptrdiff_t>(i), listed[i]) !=
          listed.begin() + static_cast<std::ptrdiff_t>(i)) {
        throw std::invalid_argument("kiln: GRAPH_TARGETS (--graph-targets) for graph '" + name +
                                    "' lists '" + listed[i] + "' twice");
      }
    }
  }

  for (const auto& g : graphs) {
    const auto named = o.graph_targets.find(g.name);
    const auto in = [](const std::vector<std::string>& list, const std::string& target) {
      return std::find(list.begin(), list.end(), target) != list.end();
    };
    const size_t ops = op_count(g);
    std::vector<size_t> chosen;
    std::vector<std::string> left_off, over_budget_kept, kept;
    std::vector<std::string> left_off_budgets;  // "cuda:sm_90: 2000"
    for (size_t t = 0; t < targets.size(); ++t) {
      const std::string& target = targets[t].name;
      const bool by_cmake = named != o.graph_targets.end() && in(named->second, target);
      const bool by_declaration = in(g.declared_targets, target);
      if (named != o.graph_targets.end() && !by_cmake) continue;
      if (!g.declared_targets.empty() && !by_declaration) continue;
      const int64_t budget = targets[t].cuda ? o.cuda_op_budget : o.cpu_op_budget;
      if (budget > 0 && ops > static_cast<size_t>(budget)) {
        if (!by_cmake && !by_declaration) {
          left_off.push_back(target);
          left_off_budgets.push_back(target + ": " + std::to_string(budget));
          continue;
        }
        over_budget_kept.push_back(target);
      }
      chosen.push_back(t);
      kept.push_back(target);
    }
    const std::string size = "graph '" + g.name + "' has " + std::to_string(ops) + " ops";
    const char* cost =
        "(one kernel that size can take its compiler, nvcc above all, many minutes and "
        "gigabytes of memory)";
    if (kept.empty() && !left_off.empty()) {
      throw std::invalid_argument(
          "kiln: " + size + ", above the op budget of each of its targets (" +
          join(left_off_budgets, ", ") + ") " + cost +
          "; to build it anyway name its targets with GRAPH_TARGETS " + g.name + " " +
          join(left_off, ",") +
          " (or kiln::graph_targets in its declaration), or raise KILN_CPU_OP_BUDGET / "
          "KILN_CUDA_OP_BUDGET (--op-budget)");
    }
    if (kept.empty()) {
      throw std::invalid_argument(
          "kiln: graph '" + g.name + "' is left with no target: its declaration allows " +
          join(g.declared_targets, ", ") + " (kiln::graph_targets), the package builds " +
          (named != o.graph_targets.end() ? join(named->second, ", ") + " for it (GRAPH_TARGETS)"
                                          : join(package_targets, ", ") + " (TARGETS)"));
    }
    if (!left_off.empty()) {
      warnings.push_back(size + ", above the op budget of " + join(left_off, ", ") + " (" +
                         join(left_off_budgets, ", ") + ") " + cost + ": not built for " +
                         join(left_off, ", ") + ", so a call there misses; built for " +
                         join(kept, ", ") + ". Say so with GRAPH_TARGETS " + g.name + " " +
                         join(kept, ",") + " to silence this, or list " + join(left_off, ",") +
                         " there to build it anyway");
    }
    if (!over_budget_kept.empty()) {
      warnings.push_back(size + ", above the op budget of " + join(over_budget_kept, ", ") +
                         "; built for them anyway, as GRAPH_TARGETS or its declaration lists "
                         "them " +
                         cost);
    }
    choice.targets_of_graph.push_back(std::move(chosen));
  }
  return choice;
}

SpecializationPlan plan_specializations(const GeneratorInputs& inputs, GraphTargetChoice chosen,
                                        const ProfiledShapes& profiled, bool general) {
  SpecializationPlan plan;
  // The newest CUDA arch also ships PTX, for devices no cubin runs on.
  int newest_cuda = -1;
  for (const auto& t : inputs.targets) {
    if (t.cuda) newest_cuda = std::max(newest_cuda, cuda_arch_number(t.arch));
  }
  for (const TargetSpec& t : inputs.targets) {
    TargetBuild build{t, (t.cuda ? "cuda-" : "cpu-") + t.arch,
                      t.cuda ? cuda_compile_flags(t.arch) : cpu_compile_flags(t.arch),
                      t.cuda && cuda_arch_number(t.arch) == newest_cuda};
    plan.targets.push_back(std::move(build));
  }
  for (size_t gi = 0; gi < inputs.graphs.size(); ++gi) {
    const ir::Graph& g = inputs.graphs[gi];
    std::vector<ir::SymbolValues> profiled_values;
    if (const auto it = profiled.by_graph.find(g.name); it != profiled.by_graph.end()) {
      for (const ProfiledShape& shape : it->second) profiled_values.push_back(shape.values);
    }
    plan.graphs.push_back(PlannedGraph{op_count(g), std::move(chosen.targets_of_graph[gi]),
                                       enumerate_specializations(g, profiled_values, general)});
  }
  plan.warnings = std::move(chosen.warnings);
  plan.warnings.insert(plan.warnings.end(), profiled.warnings.begin(), profiled.warnings.end());
  return plan;
}

}  // namespace kiln::compiler
