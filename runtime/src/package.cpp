#include <algorithm>

#include "api_boundary.h"
#include "kiln/jit.h"
#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "package_state.h"
#include "stance_env.h"
#include "text.h"

namespace kiln {

using detail::cat;

detail::PackageState::PackageState(PackageReader package_reader, const OpenOptions& options)
    : reader(std::move(package_reader)),
      stance(stance_from_env(options.stance)),
      cpu(reader, options.num_threads),
      cuda(reader, options),
      profile(ProfileRecorder::open(options.profile_out, reader.manifest())) {
  const auto* entries = reader.manifest().graphs();
  if (entries == nullptr) return;
  graphs.reserve(entries->size());
  for (const fb::GraphEntry* entry : *entries) graphs.push_back(GraphFactory::make(*this, *entry));
}

detail::PackageState::~PackageState() {
  if (profile) profile->write_or_report();
}

Package::Package(std::unique_ptr<detail::PackageState> state) : state_(std::move(state)) {}
Package::Package(Package&&) noexcept = default;
Package& Package::operator=(Package&&) noexcept = default;
Package::~Package() = default;

namespace {

// The trust policy, before PackageState loads any kernel. The keys are read
// first, so a broken trust configuration fails whatever the package.
template <typename OpenReader>
std::unique_ptr<detail::PackageState> open_trusted(const OpenOptions& options, OpenReader open) {
  const std::vector<TrustedKey> trusted = trusted_keys_of(options);
  PackageReader reader = open();
  check_package_trust(reader, trusted);
  return std::make_unique<detail::PackageState>(std::move(reader), options);
}

}  // namespace

Package Package::open(const std::filesystem::path& path, const OpenOptions& options) {
  return detail::translate_exceptions("open", "", [&] {
    return Package(
        open_trusted(options, [&] { return PackageReader::open_file(path, options.limits); }));
  });
}

Package Package::open_memory(std::span<const std::byte> bytes, const OpenOptions& options) {
  return detail::translate_exceptions("open", "", [&] {
    return Package(
        open_trusted(options, [&] { return PackageReader::open_memory(bytes, options.limits); }));
  });
}

Package Package::open_embedded(std::span<const std::byte> bytes, const OpenOptions& options) {
  return detail::translate_exceptions("open", "", [&] {
    return Package(
        open_trusted(options, [&] { return PackageReader::open_borrowed(bytes, options.limits); }));
  });
}

Graph& Package::graph(std::string_view name) {
  // Graphs are sorted by name (the verifier checked), so a binary search.
  auto& graphs = state_->graphs;
  auto it = std::lower_bound(
      graphs.begin(), graphs.end(), name,
      [](const std::unique_ptr<Graph>& g, std::string_view n) { return g->name() < n; });
  if (it != graphs.end() && (*it)->name() == name) return **it;
  std::string known;
  for (const auto& g : graphs) {
    if (!known.empty()) known += ", ";
    known += g->name();
  }
  throw Error(ErrorCode::graph_not_found,
              cat("kiln: the package has no graph '", name,
                  "'; it has: ", known.empty() ? std::string("no graphs") : known));
}

std::vector<std::string_view> Package::graph_names() const {
  std::vector<std::string_view> names;
  names.reserve(state_->graphs.size());
  for (const auto& g : state_->graphs) names.push_back(g->name());
  return names;
}

size_t Package::export_compiled(const std::filesystem::path& path) const {
  JitCompiler* jit = jit_compiler();
  if (jit == nullptr) {
    throw Error(ErrorCode::invalid_argument,
                "kiln: export_compiled: no JIT compiler is registered, so nothing was compiled");
  }
  return detail::translate_exceptions("export_compiled", "",
                                      [&] { return jit->export_compiled(state_->reader, path); });
}

void Package::set_stance(Stance stance) { state_->stance.store(stance, std::memory_order_relaxed); }
Stance Package::stance() const { return state_->stance.load(std::memory_order_relaxed); }
void Package::write_profile() {
  if (state_->profile) {
    detail::translate_exceptions("write_profile", "", [&] { state_->profile->write(); });
  }
}
const PackageReader& Package::reader() const { return state_->reader; }

}  // namespace kiln
