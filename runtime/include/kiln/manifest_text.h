// Readable text for manifest parts, shared by `kiln inspect` and messages.
#pragma once

#include <string>

#include "kiln/abi/kiln_package_generated.h"

namespace kiln {

// "x.shape[0] is n", "n in [1, 1048576]", "x.dtype == bf16".
std::string describe_guard(const fb::GraphEntry& graph, const fb::Guard& guard);
// "(n * 4096)" over the graph's symbol names; "-" when absent.
std::string describe_size_expr(const fb::GraphEntry& graph, const fb::SizeExpr* expr);
// "[n, 4096]".
std::string describe_dims(const fb::GraphEntry& graph, const fb::TensorSpec& tensor);
// 32 hex digits, high half first; "-" when absent.
std::string hash_text(const fb::Hash128* hash);

}  // namespace kiln
