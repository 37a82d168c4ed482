// The device helpers the CUDA codegen copies into kernels: CUDA source files
// of their own (cuda/*.cuh), compiled in as text by cmake/KilnEmbedText.cmake
// (each file's text after its header paragraph, byte for byte) and compiled
// as code by the ctest compiler.cuda_device_text (cuda/check_device_text.cu).
#pragma once

#include <string_view>

namespace kiln::compiler::cuda_detail {

extern const std::string_view kBitsText;          // cuda/bits.cuh
extern const std::string_view kBf16Text;          // cuda/bf16.cuh
extern const std::string_view kF16Text;           // cuda/f16.cuh
extern const std::string_view kGeluDivText;       // cuda/gelu_div.cuh
extern const std::string_view kVectorMovesText;   // cuda/vector_moves.cuh
extern const std::string_view kRowLoadsText;      // cuda/row_loads.cuh
extern const std::string_view kStreamStoresText;  // cuda/stream_stores.cuh
extern const std::string_view kNvrtcPrelude;      // cuda/nvrtc_prelude.cuh

}  // namespace kiln::compiler::cuda_detail
