#include "delta_export.h"

#include <span>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "kiln/abi/library_call.h"
#include "kiln/compiler/hash.h"
#include "kiln/compiler/manifest_builder.h"
#include "kiln/compiler/package_writer.h"
#include "kiln/error.h"

namespace kiln::jit::detail {
namespace fs = std::filesystem;
namespace {

// Builds a delta package: the base's graph entries (signature, structure
// hash, IR) holding only what was compiled, with each specialization's code
// as blobs, for `kiln merge`.
class DeltaBuilder {
 public:
  explicit DeltaBuilder(const fb::Manifest& base) : base_(base) {}

  void add_cpu(const CpuSpecialization& c) {
    const uint32_t target = target_index(c.target, fb::DeviceKind::Cpu);
    const uint32_t blob = add_blob(fb::BlobKind::CpuSharedObject, target, c.image);
    const auto kernel_base = static_cast<uint32_t>(manifest_.kernels.size());
    for (const compiler::CpuKernel& k : c.plan.kernels) add_kernel(k.entry, target, blob);
    add_specialization(c.graph, c.specialization_fb, target,
                       compiler::launch_plan(c.plan, kernel_base));
  }

  void add_cuda(const CudaSpecialization& c) {
    const uint32_t target = target_index(c.target(), fb::DeviceKind::Cuda);
    const auto kernel_base = static_cast<uint32_t>(manifest_.kernels.size());
    for (size_t k = 0; k < c.plan().kernels.size(); ++k) {
      add_kernel(c.plan().kernels[k].entry, target,
                 add_blob(fb::BlobKind::Cubin, target, c.cubins()[k]));
    }
    // The stored plan, kernels renumbered: it carries the library calls
    // (kernel kNoKernel, kept) as the runtime ran them.
    std::unique_ptr<fb::LaunchPlanT> plan(
        flatbuffers::GetRoot<fb::Specialization>(c.specialization_fb.data())->plan()->UnPack());
    for (auto& launch : plan->launches) {
      if (launch->kernel != kNoKernel) launch->kernel += kernel_base;
    }
    add_specialization(c.graph(), c.specialization_fb, target, std::move(plan));
  }

  void write(const fs::path& path, const std::string& compiler) {
    manifest_.provenance = std::make_unique<fb::ProvenanceT>();
    manifest_.provenance->kiln_version = KILN_VERSION;
    manifest_.provenance->compilers.push_back(compiler);
    try {
      compiler::write_package_file(path, std::move(manifest_), std::move(blobs_));
    } catch (const std::exception& e) {
      throw Error(ErrorCode::io,
                  "kiln: export_compiled to '" + path.string() + "' failed: " + e.what());
    }
  }

 private:
  uint32_t target_index(const std::string& name, fb::DeviceKind device) {
    auto [it, added] = targets_.emplace(name, static_cast<uint32_t>(manifest_.targets.size()));
    if (added) {
      auto t = std::make_unique<fb::TargetT>();
      t->name = name;
      t->device = device;
      t->arch = name.substr(name.find(':') + 1);
      manifest_.targets.push_back(std::move(t));
    }
    return it->second;
  }

  uint32_t add_blob(fb::BlobKind kind, uint32_t target, std::span<const std::byte> bytes) {
    compiler::BlobInput input;
    input.kind = kind;
    input.target = target;
    input.bytes.assign(reinterpret_cast<const uint8_t*>(bytes.data()),
                       reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size());
    blobs_.push_back(std::move(input));
    return static_cast<uint32_t>(blobs_.size() - 1);
  }

  void add_kernel(const std::string& entry, uint32_t target, uint32_t blob) {
    auto kernel = std::make_unique<fb::KernelT>();
    kernel->name = entry;
    kernel->target = target;
    kernel->blob = blob;
    kernel->entry = entry;
    manifest_.kernels.push_back(std::move(kernel));
  }

  void add_specialization(const std::string& graph, const std::vector<uint8_t>& spec_fb,
                          uint32_t target, std::unique_ptr<fb::LaunchPlanT> plan) {
    fb::GraphEntryT*& entry = graphs_[graph];
    if (entry == nullptr) {
      const fb::GraphEntry* found =
          base_.graphs() ? base_.graphs()->LookupByKey(graph.c_str()) : nullptr;
      if (found == nullptr) {
        throw Error(ErrorCode::internal,
                    "kiln: export_compiled: the package has no graph '" + graph + "'");
      }
      manifest_.graphs.emplace_back(found->UnPack());
      entry = manifest_.graphs.back().get();
      entry->specializations.clear();
    }
    std::unique_ptr<fb::SpecializationT> spec(
        flatbuffers::GetRoot<fb::Specialization>(spec_fb.data())->UnPack());
    spec->target = target;
    spec->plan = std::move(plan);
    entry->specializations.push_back(std::move(spec));
  }

  const fb::Manifest& base_;
  fb::ManifestT manifest_;
  std::vector<compiler::BlobInput> blobs_;
  std::unordered_map<std::string, fb::GraphEntryT*> graphs_;
  std::unordered_map<std::string, uint32_t> targets_;
};

}  // namespace

size_t write_delta_package(const fb::Manifest& base,
                           const std::vector<ServedSpecialization>& served, const fs::path& path,
                           const std::string& compiler_name) {
  DeltaBuilder delta(base);
  std::unordered_set<std::string> keys;
  size_t count = 0;
  for (const ServedSpecialization& s : served) {
    // The same code loaded through two packages of these bytes, or twice on
    // two devices: one copy.
    const std::span<const uint8_t> fbs = s.specialization()->specialization();
    const fb::Hash128* key = flatbuffers::GetRoot<fb::Specialization>(fbs.data())->key();
    if (key != nullptr && !keys.insert(compiler::Hash128{key->lo(), key->hi()}.hex()).second) {
      continue;
    }
    if (s.cpu) delta.add_cpu(*s.cpu);
    if (s.cuda) delta.add_cuda(*s.cuda);
    ++count;
  }
  delta.write(path, compiler_name);
  return count;
}

}  // namespace kiln::jit::detail
