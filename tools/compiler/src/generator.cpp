// kiln-gen: run_generator() drives the stages of generator_stages.h in
// order; generator_main() is its command line.
#include "kiln/compiler/generator.h"

#include <charconv>
#include <iostream>
#include <optional>
#include <stdexcept>

#include "kiln/compiler/generator_stages.h"
#include "kiln/compiler/package_signing.h"
#include "kiln/graph.h"
#include "kiln/support/identifier.h"
#include "kiln/support/key_file.h"

namespace kiln::compiler {

GeneratorSummary run_generator(const GeneratorOptions& o, const std::vector<ir::Graph>& traced) {
  const GeneratorInputs inputs = prepare_inputs(o, traced);
  GraphTargetChoice chosen = choose_graph_targets(inputs, o);
  // Before any compile, so a malformed profile fails fast.
  const ProfiledShapes profiled =
      o.profiles.empty() ? ProfiledShapes{} : read_profiled_shapes(o.profiles, inputs.graphs);
  const SpecializationPlan plan =
      plan_specializations(inputs, std::move(chosen), profiled, o.general);

  GeneratorSummary summary;
  summary.warnings = plan.warnings;
  summary.graphs = inputs.graphs.size();
  for (size_t gi = 0; gi < inputs.graphs.size(); ++gi) {
    GeneratorSummary::GraphTargets& built = summary.graph_targets[inputs.graphs[gi].name];
    built.ops = plan.graphs[gi].ops;
    for (const size_t t : plan.graphs[gi].targets) built.targets.push_back(inputs.targets[t].name);
  }

  if (!o.dry_run) {
    std::filesystem::create_directories(o.out_dir);
    std::filesystem::create_directories(o.work_dir);
  }
  std::optional<support::SecretKeyFile> sign_key;
  if (!o.sign_key.empty()) sign_key = support::read_secret_key_file(o.sign_key);
  const Toolchain toolchain = identify_toolchain(o, inputs.targets);
  std::vector<std::vector<LoweredTarget>> lowered(inputs.graphs.size());
  for (size_t gi = 0; gi < inputs.graphs.size(); ++gi) {
    const PlannedGraph& planned = plan.graphs[gi];
    for (const size_t t : planned.targets) {
      lowered[gi].push_back(lower_for_target(inputs.graphs[gi], planned.specializations,
                                             plan.targets[t], t, toolchain, o.tag));
    }
  }
  PackageDraft draft = assemble_package(inputs.graphs, plan, std::move(lowered));
  summary.specializations = draft.specializations;
  summary.kernels = draft.manifest.kernels.size();
  if (o.dry_run) return summary;

  NinjaBuildRequest& build = draft.build;
  build.work_dir = o.work_dir;
  build.cxx = o.cxx;
  build.cxx_launcher = o.cxx_launcher;
  build.nvcc = o.nvcc;
  build.cuda_launcher = o.cuda_launcher;
  build.ninja = o.ninja;
  build.jobs = o.jobs;
  std::vector<BlobInput> blobs = build_with_ninja(build, draft.blobs);
  std::vector<uint8_t> bytes = pack(std::move(draft), std::move(blobs), toolchain);
  if (sign_key) {
    sign_package(bytes, sign_key->key);
    summary.signer_key_id = support::key_id(support::ed25519_public_key_of(sign_key->key));
  }
  summary.package_bytes = bytes.size();
  summary.package = write_package_outputs(o, inputs.graphs, bytes);
  return summary;
}

namespace {

void usage(std::ostream& out, const char* argv0) {
  out << "usage: " << argv0
      << " --name NAME --targets T1,T2,... --out-dir DIR [--namespace NS] [--work-dir DIR]\n"
         "       [--cxx CLANGXX] [--cxx-launcher LAUNCHER] [--nvcc NVCC] [--cuda-launcher "
         "LAUNCHER]\n"
         "       [--ninja NINJA] [--jobs N] [--tag TAG] [--profile FILE.kprof]...\n"
         "       [--no-general] [--graph-targets GRAPH=T1,T2]... [--op-budget cpu|cuda=N]...\n"
         "       [--sign-key K.key] [--dry-run] [--list]\n"
         "Traces every KILN_GRAPH linked into this program, compiles its specializations for\n"
         "each target, and writes NAME.kiln, NAME.h, NAME.cpp and NAME_embed.S to --out-dir.\n"
         "Each --profile adds a static specialization per shape it recorded (docs/profile.md).\n"
         "--no-general leaves out each graph's general specialization: other shapes miss.\n"
         "--graph-targets builds GRAPH only for the targets listed (each one of --targets).\n"
         "--op-budget: a graph with more ops is left off targets of that kind (cpu: " +
             std::to_string(kDefaultCpuOpBudget) +
             ", cuda: " + std::to_string(kDefaultCudaOpBudget) +
             " by default; 0: no budget) unless --graph-targets or its declaration names them.\n"
             "--sign-key signs the package with that secret key file (kiln keygen).\n"
             "--dry-run prints each graph's op count and targets, and builds nothing.\n";
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',' || c == ';') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace

int generator_main(int argc, char** argv) {
  GeneratorOptions o;
  bool list_only = false;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument("kiln-gen: " + arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--name")
        o.name = value();
      else if (arg == "--namespace")
        o.cpp_namespace = value();
      else if (arg == "--targets") {
        for (auto& t : split_commas(value())) o.targets.push_back(t);
      } else if (arg == "--out-dir")
        o.out_dir = value();
      else if (arg == "--work-dir")
        o.work_dir = value();
      else if (arg == "--cxx")
        o.cxx = value();
      else if (arg == "--cxx-launcher")
        o.cxx_launcher = value();
      else if (arg == "--nvcc")
        o.nvcc = value();
      else if (arg == "--cuda-launcher")
        o.cuda_launcher = value();
      else if (arg == "--ninja")
        o.ninja = value();
      else if (arg == "--jobs")
        o.jobs = std::stoi(value());
      else if (arg == "--tag")
        o.tag = value();
      else if (arg == "--sign-key")
        o.sign_key = value();
      else if (arg == "--profile")
        o.profiles.emplace_back(value());
      else if (arg == "--no-general")
        o.general = false;
      else if (arg == "--graph-targets") {
        const std::string spec = value();
        const size_t equals = spec.find('=');
        if (equals == std::string::npos || equals == 0) {
          throw std::invalid_argument("kiln-gen: --graph-targets '" + spec +
                                      "': expected GRAPH=T1,T2 (e.g. sin_chain=cpu:x86-64)");
        }
        const std::string graph = spec.substr(0, equals);
        if (o.graph_targets.count(graph)) {
          throw std::invalid_argument("kiln-gen: --graph-targets names graph '" + graph +
                                      "' twice");
        }
        o.graph_targets[graph] = split_commas(spec.substr(equals + 1));
      } else if (arg == "--op-budget") {
        const std::string spec = value();
        const size_t equals = spec.find('=');
        const std::string kind = spec.substr(0, equals);
        const std::string number = equals == std::string::npos ? "" : spec.substr(equals + 1);
        int64_t budget = -1;
        const auto [end, error] =
            std::from_chars(number.data(), number.data() + number.size(), budget);
        if ((kind != "cpu" && kind != "cuda") || number.empty() || error != std::errc() ||
            end != number.data() + number.size() || budget < 0) {
          throw std::invalid_argument("kiln-gen: --op-budget '" + spec +
                                      "': expected cpu=N or cuda=N, N >= 0 (0: no budget)");
        }
        (kind == "cpu" ? o.cpu_op_budget : o.cuda_op_budget) = budget;
      } else if (arg == "--dry-run")
        o.dry_run = true;
      else if (arg == "--list")
        list_only = true;
      else if (arg == "--help" || arg == "-h") {
        usage(std::cout, argv[0]);
        return 0;
      } else {
        throw std::invalid_argument("kiln-gen: unknown argument '" + arg + "'");
      }
    }
    std::vector<ir::Graph> graphs;
    for (const auto& r : registered_graphs()) graphs.push_back(trace(r.name, r.function));
    if (list_only) {
      for (const auto& g : graphs) std::cout << graph_signature(g) << "\n";
      return 0;
    }
    if (o.name.empty() || o.out_dir.empty() || o.targets.empty()) {
      usage(std::cerr, argv[0]);
      return 2;
    }
    if (o.cpp_namespace.empty()) o.cpp_namespace = support::c_identifier(o.name);
    if (o.work_dir.empty()) o.work_dir = o.out_dir / "work";
    const GeneratorSummary s = run_generator(o, graphs);
    for (const std::string& w : s.warnings) std::cerr << "kiln-gen: warning: " << w << "\n";
    if (o.dry_run) {
      for (const auto& [name, built] : s.graph_targets) {
        std::cout << name << " (" << built.ops << " ops): ";
        for (size_t t = 0; t < built.targets.size(); ++t) {
          std::cout << (t ? ", " : "") << built.targets[t];
        }
        std::cout << "\n";
      }
      std::cout << "kiln-gen: dry run: " << s.graphs << " graphs, " << s.specializations
                << " specializations, " << s.kernels << " kernels; nothing built\n";
      return 0;
    }
    std::cout << "kiln-gen: " << s.package.string() << ": " << s.graphs << " graphs, "
              << s.specializations << " specializations, " << s.kernels << " kernels, "
              << s.package_bytes << " bytes"
              << (s.signer_key_id.empty() ? std::string() : ", signed by key " + s.signer_key_id)
              << "\n";
    return 0;
  } catch (const CompileError& e) {
    std::cerr << e.what() << "\n" << e.compiler_output() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}

}  // namespace kiln::compiler
