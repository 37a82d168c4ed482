#include "kiln/compiler/package_merge.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/abi/library_call.h"
#include "kiln/compiler/hash.h"
#include "kiln/compiler/package_signing.h"
#include "kiln/compiler/package_writer.h"
#include "kiln/package_reader.h"
#include "kiln/support/file_io.h"
#include "kiln/support/key_file.h"

namespace kiln::compiler {

namespace {

std::string merge_error_message(const std::string& delta, const std::string& graph,
                                const std::string& subject, const std::string& expected,
                                const std::string& actual, std::string_view hint) {
  std::string s = "kiln: merge: delta '" + delta + "': ";
  if (!graph.empty()) s += "graph '" + graph + "': ";
  s += subject + ": expected " + expected + ", got " + actual;
  if (!hint.empty()) s += " (" + std::string(hint) + ")";
  return s;
}

}  // namespace

MergeError::MergeError(std::string delta, std::string graph, std::string subject,
                       std::string expected, std::string actual, std::string_view hint)
    : Error(ErrorCode::invalid_argument,
            merge_error_message(delta, graph, subject, expected, actual, hint)),
      delta_(std::move(delta)),
      graph_(std::move(graph)),
      subject_(std::move(subject)),
      expected_(std::move(expected)),
      actual_(std::move(actual)) {}

namespace {

using SpecPtr = std::unique_ptr<fb::SpecializationT>;

std::string_view without_kiln_prefix(std::string_view message) {
  constexpr std::string_view kPrefix = "kiln: ";
  if (message.starts_with(kPrefix)) message.remove_prefix(kPrefix.size());
  return message;
}

// Opens and fully checks a package (every blob too: a delta's damaged blob
// is found even when nothing of it is kept). The reader's errors keep
// their type and code; the message says which input they are about.
template <typename Open>
PackageReader open_input(std::string_view role, const std::string& name, Open open) {
  const auto where = [&](const Error& e) {
    return "kiln: merge: " + std::string(role) + (name.empty() ? "" : " '" + name + "'") + ": " +
           std::string(without_kiln_prefix(e.what()));
  };
  try {
    PackageReader reader = open();
    reader.verify_all_blobs();
    return reader;
  } catch (const PackageError& e) {
    throw PackageError(e.code(), where(e));
  } catch (const Error& e) {
    throw Error(e.code(), where(e));
  }
}

std::string hex(const fb::Hash128* h) {
  return h == nullptr ? std::string("none") : Hash128{h->lo(), h->hi()}.hex();
}
std::string hex(const std::unique_ptr<fb::Hash128>& h) { return hex(h.get()); }

bool same_hash(const std::unique_ptr<fb::Hash128>& a, const std::unique_ptr<fb::Hash128>& b) {
  if (!a || !b) return !a && !b;
  return a->lo() == b->lo() && a->hi() == b->hi();
}

std::string dtype_text(fb::DType d) {
  std::string s = fb::EnumNameDType(d);
  if (s.empty()) return "dtype " + std::to_string(static_cast<int>(d));
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string symbol_name(const fb::GraphEntryT& g, int32_t index) {
  if (index >= 0 && static_cast<size_t>(index) < g.symbols.size() && g.symbols[index]) {
    return g.symbols[static_cast<size_t>(index)]->name;
  }
  return "symbol " + std::to_string(index);
}

std::string dims_text(const fb::GraphEntryT& g, const std::vector<fb::Dim>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += dims[i].symbol() < 0 ? std::to_string(dims[i].value()) : symbol_name(g, dims[i].symbol());
  }
  return s + "]";
}

std::string tensor_text(const fb::GraphEntryT& g, const fb::TensorSpecT& t) {
  return t.name + ": " + dtype_text(t.dtype) + dims_text(g, t.dims);
}

std::string symbol_text(const fb::SymbolT& s) {
  std::string text = s.name + " in [" + std::to_string(s.min) + ", " + std::to_string(s.max) + "]";
  if (s.divisible_by != 1) text += " divisible by " + std::to_string(s.divisible_by);
  return text;
}

template <typename T, typename Name>
std::string count_text(const std::vector<std::unique_ptr<T>>& items, Name name) {
  std::string s = std::to_string(items.size()) + " (";
  for (size_t i = 0; i < items.size(); ++i)
    s += (i ? ", " : "") + (items[i] ? name(*items[i]) : "");
  return s + ")";
}

template <typename Int>
std::string ints_text(const std::vector<Int>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// A delta's specializations were compiled for the delta's graph; they may
// join the base's only when both describe the same graph. Hot values are
// left out: they only chose which specializations a build made.
class GraphCheck {
 public:
  GraphCheck(const std::string& delta, const fb::GraphEntryT& base, const fb::GraphEntryT& got)
      : delta_(delta), base_(base), got_(got) {}

  void run() const {
    if (!same_hash(base_.structure_hash, got_.structure_hash)) {
      fail("structure_hash", hex(base_.structure_hash), hex(got_.structure_hash));
    }
    symbols();
    tensors("input", base_.inputs, got_.inputs);
    tensors("output", base_.outputs, got_.outputs);
    ir();
  }

 private:
  [[noreturn]] void fail(const std::string& subject, const std::string& expected,
                         const std::string& actual) const {
    throw MergeError(delta_, base_.name, subject, expected, actual);
  }

  void symbols() const {
    const auto name = [](const fb::SymbolT& s) { return s.name; };
    if (base_.symbols.size() != got_.symbols.size()) {
      fail("symbols", count_text(base_.symbols, name), count_text(got_.symbols, name));
    }
    for (size_t i = 0; i < base_.symbols.size(); ++i) {
      const fb::SymbolT& a = *base_.symbols[i];
      const fb::SymbolT& b = *got_.symbols[i];
      if (a.name != b.name || a.min != b.min || a.max != b.max ||
          a.divisible_by != b.divisible_by) {
        fail("symbol " + std::to_string(i), symbol_text(a), symbol_text(b));
      }
    }
  }

  void tensors(const std::string& role, const std::vector<std::unique_ptr<fb::TensorSpecT>>& want,
               const std::vector<std::unique_ptr<fb::TensorSpecT>>& have) const {
    const auto name = [](const fb::TensorSpecT& t) { return t.name; };
    if (want.size() != have.size()) {
      fail(role + "s", count_text(want, name), count_text(have, name));
    }
    for (size_t i = 0; i < want.size(); ++i) {
      const fb::TensorSpecT& a = *want[i];
      const fb::TensorSpecT& b = *have[i];
      if (a.name != b.name || a.dtype != b.dtype || a.dims != b.dims) {
        fail(role + " " + std::to_string(i), tensor_text(base_, a), tensor_text(got_, b));
      }
    }
  }

  void ir() const {
    const fb::IrGraphT* a = base_.ir.get();
    const fb::IrGraphT* b = got_.ir.get();
    if (!a || !b) {
      if (a || b) fail("ir", a ? "an IR" : "no IR", b ? "an IR" : "no IR");
      return;
    }
    if (a->nodes.size() != b->nodes.size()) {
      fail("ir", std::to_string(a->nodes.size()) + " nodes", std::to_string(b->nodes.size()));
    }
    for (size_t i = 0; i < a->nodes.size(); ++i) node(i, *a->nodes[i], *b->nodes[i]);
    if (a->inputs != b->inputs) fail("ir inputs", ints_text(a->inputs), ints_text(b->inputs));
    if (a->outputs != b->outputs) fail("ir outputs", ints_text(a->outputs), ints_text(b->outputs));
  }

  void node(size_t i, const fb::IrNodeT& a, const fb::IrNodeT& b) const {
    const std::string at = "ir node " + std::to_string(i) + " ('" + a.op + "') ";
    if (a.op != b.op) fail(at + "op", "'" + a.op + "'", "'" + b.op + "'");
    if (a.dtype != b.dtype) fail(at + "dtype", dtype_text(a.dtype), dtype_text(b.dtype));
    if (a.dims != b.dims) fail(at + "dims", dims_text(base_, a.dims), dims_text(got_, b.dims));
    if (a.inputs != b.inputs) fail(at + "inputs", ints_text(a.inputs), ints_text(b.inputs));
    // By bits: a NaN constant equals itself.
    if (std::bit_cast<uint64_t>(a.scalar) != std::bit_cast<uint64_t>(b.scalar)) {
      fail(at + "scalar", std::to_string(a.scalar), std::to_string(b.scalar));
    }
    if (a.axis != b.axis) fail(at + "axis", std::to_string(a.axis), std::to_string(b.axis));
    if (a.keepdim != b.keepdim) {
      fail(at + "keepdim", a.keepdim ? "true" : "false", b.keepdim ? "true" : "false");
    }
    if (a.name != b.name) fail(at + "name", "'" + a.name + "'", "'" + b.name + "'");
    if (a.axes != b.axes) fail(at + "axes", ints_text(a.axes), ints_text(b.axes));
    if (a.params != b.params) fail(at + "params", ints_text(a.params), ints_text(b.params));
  }

  const std::string& delta_;
  const fb::GraphEntryT& base_;
  const fb::GraphEntryT& got_;
};

bool is_fully_static(const fb::SpecializationT& s) {
  return std::none_of(s.symbol_values.begin(), s.symbol_values.end(),
                      [](int64_t v) { return v < 0; });
}

// x86-64 = 1, x86-64-v2 = 2, ...: the order the runtime ranks CPU targets by.
int cpu_level(const std::string& arch) {
  return arch.starts_with("x86-64-v") ? std::stoi(arch.substr(8)) : 1;
}

// Inserts `added` (one delta's kept specializations of graph `g`, in delta
// order) where the runtime, which tries a target's specializations in
// manifest order, picks them only when nothing more specific of the base
// does: fully static ones before the target's first specialization, dynamic
// ones after its last fully static one.
void insert_in_selection_order(fb::GraphEntryT& g, std::vector<SpecPtr> added) {
  std::vector<SpecPtr>& list = g.specializations;
  const size_t n = list.size();
  std::map<uint32_t, size_t> first, last_static;
  for (size_t i = 0; i < n; ++i) {
    first.try_emplace(list[i]->target, i);
    if (is_fully_static(*list[i])) last_static[list[i]->target] = i;
  }
  std::vector<std::vector<SpecPtr>> before(n + 1), after(n);
  // Statics first, so where both land in one slot they keep that order.
  for (const bool statics : {true, false}) {
    for (SpecPtr& s : added) {
      if (!s || is_fully_static(*s) != statics) continue;
      const auto f = first.find(s->target);
      if (f == first.end()) {
        before[n].push_back(std::move(s));  // a target the graph had nothing for
      } else if (const auto l = last_static.find(s->target); !statics && l != last_static.end()) {
        after[l->second].push_back(std::move(s));
      } else {
        before[f->second].push_back(std::move(s));
      }
    }
  }
  std::vector<SpecPtr> merged;
  for (size_t i = 0; i <= n; ++i) {
    for (SpecPtr& s : before[i]) merged.push_back(std::move(s));
    if (i == n) break;
    merged.push_back(std::move(list[i]));
    for (SpecPtr& s : after[i]) merged.push_back(std::move(s));
  }
  list = std::move(merged);
}

fb::ManifestT unpack(const PackageReader& reader) {
  return std::move(*std::unique_ptr<fb::ManifestT>(reader.manifest().UnPack()));
}

class Merger {
 public:
  explicit Merger(const PackageReader& base) : m_(unpack(base)) {
    // write_package() takes every blob's contents; the base's keep their
    // indices, and their compression choice.
    for (uint32_t i = 0; i < m_.blobs.size(); ++i) {
      const fb::BlobT& b = *m_.blobs[i];
      const std::span<const std::byte> bytes = base.blob(i);
      const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
      blobs_.push_back(BlobInput{b.kind, b.target, std::vector<uint8_t>(p, p + bytes.size()),
                                 b.compression == fb::Compression::Zstd});
    }
    m_.blobs.clear();
    for (uint32_t k = 0; k < m_.kernels.size(); ++k)
      kernel_by_name_.emplace(m_.kernels[k]->name, k);
  }

  void apply(const std::string& delta, const PackageReader& reader) {
    ++summary_.deltas;
    const std::unique_ptr<fb::ManifestT> d(reader.manifest().UnPack());

    // Which specializations join which graph; nothing changes before every
    // graph of the delta has been checked.
    std::vector<std::pair<fb::GraphEntryT*, std::vector<SpecPtr>>> kept;
    size_t added = 0;
    for (auto& dg : d->graphs) {
      fb::GraphEntryT* g = find_graph(dg->name);
      if (g == nullptr) {
        std::string names;
        for (const auto& bg : m_.graphs) names += (names.empty() ? "" : ", ") + bg->name;
        throw MergeError(delta, dg->name, "name", "one of the base's graphs (" + names + ")",
                         "'" + dg->name + "', which the base lacks");
      }
      GraphCheck(delta, *g, *dg).run();
      std::set<std::pair<uint64_t, uint64_t>> keys;
      for (const SpecPtr& s : g->specializations) {
        if (s->key) keys.emplace(s->key->lo(), s->key->hi());
      }
      std::vector<SpecPtr> specs;
      for (SpecPtr& s : dg->specializations) {
        if (!s->key) {
          throw MergeError(delta, dg->name, "specialization '" + s->name + "' key", "a key", "none",
                           "a key is how merge tells specializations apart");
        }
        if (!keys.emplace(s->key->lo(), s->key->hi()).second) {
          ++summary_.specializations_skipped;
          continue;
        }
        specs.push_back(std::move(s));
      }
      added += specs.size();
      if (!specs.empty()) kept.emplace_back(g, std::move(specs));
    }
    if (added == 0) return;  // merging it again must not change the bytes

    target_map_.assign(d->targets.size(), std::nullopt);
    std::set<uint32_t> spec_targets, kernels, blobs;
    for (const auto& [g, specs] : kept) {
      for (const SpecPtr& s : specs) {
        spec_targets.insert(s->target);
        if (s->plan) {
          for (const auto& launch : s->plan->launches) {
            // A library call (kNoKernel) launches no kernel of the delta.
            if (launch->kernel != kNoKernel) kernels.insert(launch->kernel);
          }
        }
      }
    }
    for (uint32_t t : spec_targets) map_target(delta, *d, t);
    // A graph that lists its targets (GRAPH_TARGETS) gains the ones the
    // delta adds code for, where that cannot hide its own code (below).
    for (const auto& [g, specs] : kept) {
      for (const SpecPtr& s : specs) add_graph_target(delta, *g, map_target(delta, *d, s->target));
    }
    for (uint32_t k : kernels) {
      const fb::KernelT& kernel = *d->kernels[k];
      blobs.insert(kernel.blob);
      if (kernel.source_blob >= 0) blobs.insert(static_cast<uint32_t>(kernel.source_blob));
      if (kernel.ptx_blob >= 0) blobs.insert(static_cast<uint32_t>(kernel.ptx_blob));
    }

    std::map<uint32_t, uint32_t> blob_map;
    for (uint32_t b : blobs) {
      const fb::BlobT& blob = *d->blobs[b];
      const std::span<const std::byte> bytes = reader.blob(b);
      const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
      blob_map[b] = static_cast<uint32_t>(blobs_.size());
      blobs_.push_back(BlobInput{blob.kind, map_target(delta, *d, blob.target),
                                 std::vector<uint8_t>(p, p + bytes.size()),
                                 blob.compression == fb::Compression::Zstd});
    }
    summary_.blobs_added += blobs.size();

    std::map<uint32_t, uint32_t> kernel_map;
    for (uint32_t k : kernels) {
      std::unique_ptr<fb::KernelT> kernel = std::move(d->kernels[k]);
      if (const auto it = kernel_by_name_.find(kernel->name); it != kernel_by_name_.end()) {
        kernel_collision(delta, kept, k, kernel->name, it->second);
      }
      kernel->target = map_target(delta, *d, kernel->target);
      kernel->blob = blob_map.at(kernel->blob);
      if (kernel->source_blob >= 0) {
        kernel->source_blob =
            static_cast<int32_t>(blob_map.at(static_cast<uint32_t>(kernel->source_blob)));
      }
      if (kernel->ptx_blob >= 0) {
        kernel->ptx_blob =
            static_cast<int32_t>(blob_map.at(static_cast<uint32_t>(kernel->ptx_blob)));
      }
      kernel_map[k] = static_cast<uint32_t>(m_.kernels.size());
      kernel_by_name_.emplace(kernel->name, kernel_map[k]);
      m_.kernels.push_back(std::move(kernel));
    }
    summary_.kernels_added += kernels.size();

    for (auto& [g, specs] : kept) {
      for (SpecPtr& s : specs) {
        s->target = map_target(delta, *d, s->target);
        if (s->plan) {
          for (auto& launch : s->plan->launches) {
            if (launch->kernel != kNoKernel) launch->kernel = kernel_map.at(launch->kernel);
          }
        }
      }
      extended_.insert(g->name);
      insert_in_selection_order(*g, std::move(specs));
    }
    summary_.specializations_added += added;
    record_provenance(*d, added);
  }

  MergeResult finish() {
    MergeResult r;
    r.summary = summary_;
    r.summary.graphs = m_.graphs.size();
    r.summary.graphs_extended = extended_.size();
    r.summary.blobs = blobs_.size();
    r.package = write_package(std::move(m_), std::move(blobs_));
    r.summary.package_bytes = r.package.size();
    // Every input passed the runtime's checks; so must the output, or
    // nothing is written.
    try {
      PackageReader::open_memory(std::as_bytes(std::span(r.package)));
    } catch (const Error& e) {
      throw Error(ErrorCode::internal,
                  "kiln: merge: the merged package fails the runtime's checks (a bug in kiln "
                  "merge): " +
                      std::string(without_kiln_prefix(e.what())));
    }
    return r;
  }

 private:
  // The reader has checked that graphs are sorted by name, and merging
  // adds none.
  fb::GraphEntryT* find_graph(const std::string& name) {
    const auto it =
        std::lower_bound(m_.graphs.begin(), m_.graphs.end(), name,
                         [](const auto& g, const std::string& n) { return g->name < n; });
    return it != m_.graphs.end() && (*it)->name == name ? it->get() : nullptr;
  }

  // Adds package target `t` to graph `g`'s targets, when it lists them and
  // lacks it. The runtime runs a graph's best CPU level, so a CPU level at
  // or above one the graph has would hide the graph's own code there
  // (the rule map_target applies to the package): refused. A CUDA device
  // runs the package's target for it, whichever graphs have code there.
  void add_graph_target(const std::string& delta, fb::GraphEntryT& g, uint32_t t) {
    if (g.targets.empty() || std::find(g.targets.begin(), g.targets.end(), t) != g.targets.end()) {
      return;
    }
    const fb::TargetT& added = *m_.targets[t];
    if (added.device == fb::DeviceKind::Cpu) {
      std::string graph_cpu;
      bool hides = false;
      for (uint32_t have : g.targets) {
        const fb::TargetT& target = *m_.targets[have];
        if (target.device != fb::DeviceKind::Cpu) continue;
        graph_cpu += (graph_cpu.empty() ? "" : ", ") + target.name;
        hides = hides || cpu_level(added.arch) >= cpu_level(target.arch);
      }
      if (hides) {
        throw MergeError(delta, g.name, "target '" + added.name + "'",
                         "one of the graph's targets (" + graph_cpu +
                             ") or a CPU level below "
                             "them",
                         "a level above one of them",
                         "the runtime runs a graph's best CPU level, so on a CPU that runs " +
                             added.arch +
                             " the graph would see only the delta's specializations; compile "
                             "the delta for the graph's targets");
      }
    }
    g.targets.insert(std::upper_bound(g.targets.begin(), g.targets.end(), t), t);
  }

  // The merged index of delta target `t`, appending it when the package
  // lacks it and the runtime's target choice allows (see the header).
  uint32_t map_target(const std::string& delta, const fb::ManifestT& d, uint32_t t) {
    if (target_map_[t]) return *target_map_[t];
    const fb::TargetT& target = *d.targets[t];
    std::string same_kind;
    int highest_below = 0;
    bool shadows = false;
    for (uint32_t i = 0; i < m_.targets.size(); ++i) {
      const fb::TargetT& have = *m_.targets[i];
      if (have.name == target.name) return *(target_map_[t] = i);
      if (have.device != target.device) continue;
      same_kind += (same_kind.empty() ? "" : ", ") + have.name;
      if (target.device == fb::DeviceKind::Cpu) {
        const int level = cpu_level(have.arch);
        if (level < cpu_level(target.arch)) {
          shadows = true;
          highest_below = std::max(highest_below, level);
        }
      } else {
        shadows = true;
      }
    }
    if (shadows) {
      if (target.device == fb::DeviceKind::Cpu) {
        const std::string base_arch =
            highest_below == 1 ? "x86-64" : "x86-64-v" + std::to_string(highest_below);
        throw MergeError(
            delta, "", "target '" + target.name + "'",
            "a target of the base (" + same_kind + ") or a CPU level below all of them",
            "a CPU level above " + base_arch,
            "the runtime runs one CPU target, the best level the package has, so on a CPU that "
            "runs " +
                target.arch +
                " it would see only the delta's specializations; compile the delta at the "
                "base's level, e.g. with KILN_CPU_LEVEL=" +
                base_arch);
      }
      throw MergeError(delta, "", "target '" + target.name + "'",
                       "a target of the base (" + same_kind + ")", "another CUDA target",
                       "the runtime runs one CUDA target per device, so a device that runs "
                       "the base's kernels could pick the new one and see only the delta's "
                       "specializations; compile the delta for a target the base has");
    }
    auto copy = std::make_unique<fb::TargetT>(target);
    m_.targets.push_back(std::move(copy));
    ++summary_.targets_added;
    return *(target_map_[t] = static_cast<uint32_t>(m_.targets.size() - 1));
  }

  [[noreturn]] void kernel_collision(
      const std::string& delta,
      const std::vector<std::pair<fb::GraphEntryT*, std::vector<SpecPtr>>>& kept, uint32_t kernel,
      const std::string& name, uint32_t existing) const {
    std::string graph, subject = "kernel '" + name + "'";
    for (const auto& [g, specs] : kept) {
      for (const SpecPtr& s : specs) {
        if (!s->plan) continue;
        for (const auto& launch : s->plan->launches) {
          if (launch->kernel == kernel && graph.empty()) {
            graph = g->name;
            std::string owner = "specialization '";
            owner += s->name;
            owner += "' (key ";
            owner += hex(s->key);
            owner += "): ";
            subject.insert(0, owner);
          }
        }
      }
    }
    std::string user = "no specialization";
    for (const auto& g : m_.graphs) {
      for (const SpecPtr& s : g->specializations) {
        if (!s->plan) continue;
        for (const auto& launch : s->plan->launches) {
          if (launch->kernel == existing) {
            user = "graph '" + g->name + "', specialization '" + s->name + "' (key " + hex(s->key) +
                   ")";
          }
        }
        if (user.starts_with("graph")) break;
      }
      if (user.starts_with("graph")) break;
    }
    throw MergeError(delta, graph, subject, "a kernel name the package does not have",
                     "the name of a kernel the package has, used by " + user,
                     "kernel names come from keys: one name under two keys means two builds "
                     "that disagree");
  }

  void record_provenance(const fb::ManifestT& d, size_t added) {
    if (!m_.provenance) m_.provenance = std::make_unique<fb::ProvenanceT>();
    fb::ProvenanceT& p = *m_.provenance;
    const auto add_missing = [](std::vector<std::string>& to,
                                const std::vector<std::string>& from) {
      for (const std::string& s : from) {
        if (std::find(to.begin(), to.end(), s) == to.end()) to.push_back(s);
      }
    };
    std::string version = "?", source = "none";
    if (d.provenance) {
      add_missing(p.compilers, d.provenance->compilers);
      add_missing(p.flags, d.provenance->flags);
      version = d.provenance->kiln_version;
      source = hex(d.provenance->source_hash);
    }
    // No file names: the same inputs give the same bytes wherever they lie.
    p.flags.push_back("merge: " + std::to_string(added) + " specialization" +
                      (added == 1 ? "" : "s") + " from a delta (kiln " + version +
                      ", source hash " + source + ")");
  }

  fb::ManifestT m_;
  std::vector<BlobInput> blobs_;
  std::map<std::string, uint32_t> kernel_by_name_;
  std::vector<std::optional<uint32_t>> target_map_;  // the current delta's
  std::set<std::string> extended_;
  MergeSummary summary_;
};

}  // namespace

MergeResult merge_packages(std::span<const std::byte> base,
                           std::span<const std::span<const std::byte>> deltas) {
  const PackageReader base_reader =
      open_input("base", "", [&] { return PackageReader::open_borrowed(base); });
  Merger merger(base_reader);
  for (size_t i = 0; i < deltas.size(); ++i) {
    const std::string name = "#" + std::to_string(i + 1);
    const PackageReader reader =
        open_input("delta", name, [&] { return PackageReader::open_borrowed(deltas[i]); });
    merger.apply(name, reader);
  }
  return merger.finish();
}

MergeSummary merge_package_files(const std::filesystem::path& base,
                                 std::span<const std::filesystem::path> deltas,
                                 const std::filesystem::path& out,
                                 const support::Ed25519SecretKey* sign_key) {
  const PackageReader base_reader =
      open_input("base", base.string(), [&] { return PackageReader::open_file(base); });
  Merger merger(base_reader);
  for (const std::filesystem::path& delta : deltas) {
    const PackageReader reader =
        open_input("delta", delta.string(), [&] { return PackageReader::open_file(delta); });
    merger.apply(delta.string(), reader);
  }
  MergeResult r = merger.finish();
  if (sign_key != nullptr) {
    sign_package(r.package, *sign_key);
    r.summary.signer_key_id = support::key_id(support::ed25519_public_key_of(*sign_key));
  }
  try {
    support::write_file_atomic(
        out, std::string_view(reinterpret_cast<const char*>(r.package.data()), r.package.size()));
  } catch (const std::runtime_error& e) {
    throw Error(ErrorCode::io, "kiln: merge: " + std::string(without_kiln_prefix(e.what())));
  }
  return r.summary;
}

}  // namespace kiln::compiler
