// Compiles generated CUDA kernels with NVRTC (in process, through
// nvrtc_library.h): one cubin per kernel, as the generator's nvcc build
// makes, each kernel's source being a whole translation unit lowered with
// CudaCodegenOptions::nvrtc. Needs no GPU: NVRTC compiles for any arch it
// supports without a device.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "kiln/compiler/cuda_codegen.h"

namespace kiln::jit::detail {

// NVRTC's options for a cubin of sm_<arch> (`ptx`: PTX of compute_<arch>),
// the equivalent of the generator's nvcc flags (compiler::cuda_compile_flags):
// C++17 and no fast math, spelled out (--fmad=true --prec-div=true
// --prec-sqrt=true --ftz=false, nvcc's defaults too). nvcc's -O3 has no
// NVRTC spelling: NVRTC optimizes device code at that level by default.
std::vector<std::string> nvrtc_options(int arch, bool ptx = false);

// One kernel's cubin for sm_<arch> (an ELF image for cuModuleLoadData).
// Throws JitCompileError naming the graph and the kernel:
//  - NVRTC cannot be loaded (exit_code -1; NvrtcLibrary::get);
//  - NVRTC does not support the arch (-1; the message lists those it does);
//  - the compile fails (exit_code is the nvrtcResult, compiler_output
//    NVRTC's log);
//  - the result is no ELF image, or has no symbol named `entry` (-1).
std::vector<std::byte> build_cubin(const std::string& source, const std::string& entry, int arch,
                                   const std::string& graph);

// One kernel's PTX for compute_<arch>, NUL-terminated as cuModuleLoadData
// wants it: code the driver can compile for a GPU newer than any arch this
// NVRTC makes cubins for. Throws as build_cubin (the check is for the
// `.entry` directive).
std::vector<std::byte> build_ptx(const std::string& source, const std::string& entry, int arch,
                                 const std::string& graph);

// build_cubin for every kernel, the cubins in the kernels' order, compiled
// on up to `max_threads` threads at once (0: std::thread::hardware_concurrency;
// NVRTC compiles distinct programs concurrently). After a failure no further
// kernel starts; the error thrown is that of the first failing kernel in
// order, so it does not depend on thread timing.
std::vector<std::vector<std::byte>> build_cubins(const std::vector<compiler::CudaKernel>& kernels,
                                                 int arch, const std::string& graph,
                                                 unsigned max_threads = 0);

}  // namespace kiln::jit::detail
