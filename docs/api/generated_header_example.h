/// @file
/// What `add_precompiled_graphs(my_kernels GRAPHS graphs/norms.cpp ...)`
/// generates as `my_kernels.h` (in `<build dir>/my_kernels.kiln_out/`, on the
/// library's public include path), for the README quickstart's `rmsnorm`
/// graph. The generated file has the same declarations with one-line comments;
/// this copy documents them. The namespace is the call's `NAMESPACE`, by
/// default its name.
#pragma once

#include <cstddef>
#include <span>

#include <kiln/runtime.h>

/// The generated functions of one `add_precompiled_graphs()` call.
namespace my_kernels {

/// The package file, embedded in the library by an assembler `.incbin`: for
/// `kiln::Package::open_embedded(package(), options)` with other
/// `kiln::OpenOptions` than loaded_package()'s.
std::span<const std::byte> package();

/// The embedded package, opened with `kiln::Package::open_embedded(package())`
/// and default `kiln::OpenOptions` (so `KILN_STANCE` and `KILN_PROFILE_OUT`
/// apply) on first use; thread-safe. Change its stance with
/// `loaded_package().set_stance(...)`.
/// @throws kiln::PackageError on the first use if the runtime refuses the
///   package (a graph over kiln::kMaxSymbols or kiln::kMaxTensors, say).
kiln::Package& loaded_package();

/// One function per graph, named as the graph:
/// `rmsnorm(x: bf16[n, 4096], w: bf16[4096]) -> (out0: bf16[n, 4096])`.
///
/// Takes the graph's inputs in the order the graph declares them
/// (`kiln::input`), then its outputs in the order it returns them (named by
/// `Outputs::named`, else `out0`, `out1`, ...), then the stream. The caller
/// allocates every output, contiguous, in the stated dtype and shape, each
/// symbol at the value the inputs give it; a reduction without `keepdim` drops
/// its axes, so a reduction over every axis is rank 0 (shape `{}`, one element).
/// Runs `loaded_package().graph("rmsnorm").call(...)`.
///
/// @param x, w the inputs.
/// @param out0 the output; it must not overlap an input or another output.
/// @param stream for CUDA tensors, a `CUstream` of the device's primary context
///   (null: the legacy default stream); ignored for CPU tensors.
/// @throws kiln::RecompileError, kiln::NoSpecializationError, kiln::Error as
///   kiln::Graph::call does.
void rmsnorm(const kiln::TensorView& x, const kiln::TensorView& w, const kiln::TensorView& out0,
             void* stream = nullptr);

}  // namespace my_kernels
