// What a Package owns, kept on the heap so Graph references and the reader
// stay put when the Package moves.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "cpu_launcher.h"
#include "cuda_launcher.h"
#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "profile_recorder.h"

namespace kiln::detail {

struct PackageState {
  PackageState(PackageReader package_reader, const OpenOptions& options);
  ~PackageState();

  PackageReader reader;
  std::atomic<Stance> stance;
  CpuLauncher cpu;
  CudaLauncher cuda;
  std::vector<std::unique_ptr<Graph>> graphs;  // manifest order, so sorted by name
  // Set only while recording a profile: a call tests this pointer and
  // nothing else when it is not.
  std::unique_ptr<ProfileRecorder> profile;
};

struct GraphFactory {
  static std::unique_ptr<Graph> make(PackageState& package, const fb::GraphEntry& entry);
};

}  // namespace kiln::detail
