// A call's arguments on random data: inputs drawn for a graph with every
// symbol set to n (or each to its own value), or given ones, their reference
// outputs from the interpreter, and output buffers filled with a marker
// byte, as DLTensors ready for Graph::call.
// Shared by the tests that run a package against the interpreter.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "kiln/compiler/interpreter.h"
#include "kiln/graph.h"
#include "kiln/runtime.h"

namespace kiln_test {

class RandomCall {
 public:
  RandomCall(const kiln::ir::Graph& g, int64_t n, uint64_t seed)
      : RandomCall(g, kiln::ir::SymbolValues(g.symbols.size(), n), seed) {}
  RandomCall(const kiln::ir::Graph& g, const kiln::ir::SymbolValues& values, uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (int32_t id : g.inputs) {
      const std::vector<int64_t> shape = kiln::ir::eval_shape(g.node(id).shape, values);
      inputs_.push_back(kiln::compiler::random_tensor(g.node(id).dtype, shape, rng));
    }
    prepare(g);
  }
  // The given inputs, one per graph input in order.
  RandomCall(const kiln::ir::Graph& g, std::vector<kiln::compiler::HostTensor> inputs)
      : inputs_(std::move(inputs)) {
    prepare(g);
  }
  // The DLTensors point into this object.
  RandomCall(const RandomCall&) = delete;
  RandomCall& operator=(const RandomCall&) = delete;

  const std::vector<const DLTensor*>& inputs() const { return inputs_dl_; }
  const std::vector<const DLTensor*>& outputs() const { return outputs_dl_; }
  // The interpreter's outputs.
  const std::vector<kiln::compiler::HostTensor>& want() const { return want_; }
  // Refills the outputs with the marker byte, so that a later call is seen
  // to write them (a call that writes nothing then fails a comparison).
  void poison_outputs() {
    for (auto& bytes : out_bytes_) std::fill(bytes.begin(), bytes.end(), uint8_t{0xAB});
  }
  // What the call wrote to output i.
  kiln::compiler::HostTensor got(size_t i) const {
    return kiln::compiler::HostTensor::from_bytes(want_[i].dtype, want_[i].shape,
                                                  out_bytes_[i].data());
  }

 private:
  // The interpreter's outputs for inputs_, and the buffers and views.
  void prepare(const kiln::ir::Graph& g) {
    want_ = kiln::compiler::interpret(g, inputs_);
    for (const auto& t : inputs_) in_bytes_.push_back(t.to_bytes());
    for (const auto& t : want_) out_bytes_.emplace_back(t.to_bytes().size(), 0xAB);
    for (size_t i = 0; i < inputs_.size(); ++i) {
      views_.emplace_back(in_bytes_[i].data(), inputs_[i].dtype,
                          std::span<const int64_t>(inputs_[i].shape));
    }
    for (size_t i = 0; i < want_.size(); ++i) {
      views_.emplace_back(out_bytes_[i].data(), want_[i].dtype,
                          std::span<const int64_t>(want_[i].shape));
    }
    for (size_t i = 0; i < views_.size(); ++i) {
      (i < inputs_.size() ? inputs_dl_ : outputs_dl_).push_back(&views_[i].dl());
    }
  }

  std::vector<kiln::compiler::HostTensor> inputs_, want_;
  std::vector<std::vector<uint8_t>> in_bytes_, out_bytes_;
  std::vector<kiln::TensorView> views_;
  std::vector<const DLTensor*> inputs_dl_, outputs_dl_;
};

}  // namespace kiln_test
