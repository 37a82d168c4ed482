// Rebuilds the traced graph from the IR a package stores for it, so the JIT
// lowers exactly what the generator lowered.
#pragma once

#include "kiln/abi/kiln_package_generated.h"
#include "kiln/compiler/ir.h"

namespace kiln::jit::detail {

// Throws PackageError(package_corrupt) when the entry has no IR or names an
// op this build does not know.
ir::Graph graph_from_package(const fb::GraphEntry& entry);

}  // namespace kiln::jit::detail
