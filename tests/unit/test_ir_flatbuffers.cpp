// The IR's round trip through the package's FlatBuffers (kiln/compiler/
// ir_flatbuffers.h): every traced graph comes back equal, field by field,
// and stored IR that would make codegen index out of range is an
// IrFormatError, never a graph.
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/compiler/ir_flatbuffers.h"
#include "kiln/graph.h"

namespace {

using kiln::compiler::IrFormatError;

// The entry as a verified FlatBuffer, as a package holds it.
std::vector<uint8_t> pack(const kiln::fb::GraphEntryT& entry) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(kiln::fb::GraphEntry::Pack(fbb, &entry));
  std::vector<uint8_t> bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  flatbuffers::Verifier verifier(bytes.data(), bytes.size());
  EXPECT_TRUE(verifier.VerifyBuffer<kiln::fb::GraphEntry>(nullptr));
  return bytes;
}

kiln::ir::Graph read_back(const kiln::fb::GraphEntryT& entry) {
  const std::vector<uint8_t> bytes = pack(entry);
  return kiln::compiler::ir_from_fb(*flatbuffers::GetRoot<kiln::fb::GraphEntry>(bytes.data()));
}

kiln::Outputs pointwise() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096, .hot = {8, 64}});
  auto m = kiln::sym("m", {.min = 4, .max = 1024, .divisible_by = 4});
  auto x = kiln::input("x", kiln::f32, {n, m});
  auto h = kiln::input("h", kiln::f16, {m});
  auto i = kiln::input("i", kiln::i64, {n, 1});
  auto y = kiln::gelu(x) * 0.125 + kiln::sigmoid(kiln::cast(h, kiln::f32)) - kiln::constant(-0.0);
  auto mask = kiln::logical_not(kiln::eq(kiln::cast(i, kiln::i32), kiln::constant(3, kiln::i32)));
  auto z = kiln::where(mask, kiln::pow(kiln::abs(y), 1.5), kiln::constant(INFINITY));
  return kiln::outputs(z, kiln::cast(kiln::rsqrt(kiln::cast(x, kiln::f64) + 1.0), kiln::bf16),
                       mask);
}

kiln::Outputs reductions() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096});
  auto x = kiln::input("x", kiln::bf16, {n, 6, 5});
  return kiln::outputs(kiln::sum(x, {0, 2}), kiln::argmax(x, 1), kiln::log_softmax(x, 0),
                       kiln::prod(x, -1, true), kiln::mean(x, kiln::all_axes(x), true),
                       kiln::max(kiln::cast(x, kiln::f32), {1, 2}), kiln::min(x, 2));
}

kiln::Outputs matmuls() {
  auto b = kiln::sym("b", {.min = 1, .max = 64});
  auto a16 = kiln::input("a", kiln::f16, {b, 32, 16});
  auto w16 = kiln::input("w", kiln::f16, {16, 8});
  auto bf = kiln::input("bf", kiln::bf16, {b, 4, 16});
  auto f = kiln::input("f", kiln::f32, {16, 3});
  return kiln::outputs(kiln::matmul(a16, w16), kiln::matmul(bf, kiln::transpose(bf, 1, 2)),
                       kiln::relu(kiln::matmul(kiln::cast(a16, kiln::f32), f)));
}

kiln::Outputs views() {
  auto n = kiln::sym("n", {.min = 1, .max = 4096});
  auto x = kiln::input("x", kiln::f32, {n, 6, 5});
  auto ids = kiln::input("ids", kiln::i64, {n});
  auto t = kiln::input("t", kiln::bf16, {12, 5});
  auto y = kiln::exp(x * 0.25);
  return kiln::outputs(kiln::reshape(y, {n, 30}), kiln::transpose(x, 0, 2),
                       kiln::slice(x, 1, 1, -1, 2), kiln::concat({x, y, x}, 2),
                       kiln::embedding(t, ids - 5), kiln::gather(x, ids - 3, 1),
                       kiln::expand(kiln::sum(x, 0), {n, 6, 5}) - x,
                       kiln::unsqueeze(kiln::squeeze(kiln::slice(x, 2, 0, 1), 2), 0),
                       kiln::iota({n, 5}, 0, kiln::i32) * kiln::iota({1, 5}, 1, kiln::i32));
}

TEST(IrFlatbuffers, EveryGraphComesBackEqual) {
  const std::vector<std::pair<const char*, kiln::Outputs (*)()>> graphs = {
      {"pointwise", &pointwise},
      {"reductions", &reductions},
      {"matmuls", &matmuls},
      {"views", &views}};
  for (const auto& [name, function] : graphs) {
    SCOPED_TRACE(name);
    const kiln::ir::Graph g = kiln::trace(name, function);
    ASSERT_FALSE(g.nodes.empty());
    const kiln::ir::Graph back = read_back(*kiln::compiler::graph_entry_ir(g));
    EXPECT_EQ(back, g) << "stored:\n"
                       << kiln::ir::graph_to_string(g) << "read back:\n"
                       << kiln::ir::graph_to_string(back);
  }
}

// A graph with an input, a reduction, a gather and a concat, so each kind
// of damage has a node to land on.
kiln::Outputs small() {
  auto n = kiln::sym("n", {.min = 1, .max = 64});
  auto x = kiln::input("x", kiln::f32, {n, 4});
  auto i = kiln::input("i", kiln::i32, {3});
  return kiln::outputs(kiln::sum(x, 1), kiln::gather(x, i, 1), kiln::concat({x, x}, 1));
}

TEST(IrFlatbuffers, HostileIrIsATypedError) {
  const kiln::ir::Graph g = kiln::trace("small", &small);
  const auto node_of = [&](size_t output) { return g.outputs.at(output); };
  const int32_t last = static_cast<int32_t>(g.nodes.size()) - 1;
  struct Damage {
    const char* what;
    std::function<void(kiln::fb::GraphEntryT&)> apply;
    std::string expected;
  };
  const auto reduce = static_cast<size_t>(node_of(0));
  const auto gather = static_cast<size_t>(node_of(1));
  const auto concat = static_cast<size_t>(node_of(2));
  const std::vector<Damage> damages = {
      {"no IR", [](auto& e) { e.ir.reset(); },
       "the package stores no IR for it (expected an IrGraph, got none)"},
      {"an op this build does not know", [&](auto& e) { e.ir->nodes[reduce]->op = "fft"; },
       "unknown op 'fft' (expected one this Kiln knows)"},
      {"an operand id past the node", [&](auto& e) { e.ir->nodes[reduce]->inputs[0] = last; },
       "IR node " + std::to_string(reduce) + " reads node " + std::to_string(last)},
      {"a negative operand id", [&](auto& e) { e.ir->nodes[gather]->inputs[1] = -4; },
       "IR node " + std::to_string(gather) + " reads node -4"},
      {"an operand id far out of range", [&](auto& e) { e.ir->nodes[concat]->inputs[1] = 1 << 30; },
       "IR node " + std::to_string(concat) + " reads node " + std::to_string(1 << 30)},
      {"an output id out of range", [&](auto& e) { e.ir->outputs[2] = last + 1; },
       "IR names an unknown output node"},
      {"an input id out of range", [&](auto& e) { e.ir->inputs[0] = -1; },
       "IR names an unknown input node"},
      {"an input that is no input node", [&](auto& e) { e.ir->inputs[1] = node_of(0); },
       "input 1 is node " + std::to_string(node_of(0)) +
           " (reduce_sum), expected an input node named once"},
      {"one input named twice", [&](auto& e) { e.ir->inputs[1] = e.ir->inputs[0]; },
       "input 1 is node " + std::to_string(g.inputs[0]) +
           " (input), expected an input node named once"},
      {"a symbol the graph does not declare",
       [&](auto& e) { e.ir->nodes[reduce]->dims[0] = kiln::fb::Dim(0, 5); },
       "IR node " + std::to_string(reduce) + " dim 0 names symbol 5 of 1"},
      {"a dtype past the last",
       [&](auto& e) { e.ir->nodes[gather]->dtype = static_cast<kiln::fb::DType>(42); },
       "IR node " + std::to_string(gather) + " has an unknown dtype"},
      {"an operand too few", [&](auto& e) { e.ir->nodes[gather]->inputs.pop_back(); },
       "node " + std::to_string(gather) + " (gather) has 1 inputs, expected 2"},
      {"a reduction over an axis the operand lacks",
       [&](auto& e) { e.ir->nodes[reduce]->axis = 2; },
       "node " + std::to_string(reduce) + " (reduce_sum) reduces axes that do not fit rank 2"},
      {"a gather along an axis the table lacks", [&](auto& e) { e.ir->nodes[gather]->axis = 7; },
       "node " + std::to_string(gather) + " (gather): expected an axis in [0, 2), got 7"},
      {"an output the signature lacks", [&](auto& e) { e.outputs.pop_back(); },
       "the IR has 3 outputs, the signature 2"},
      {"an input the signature lacks", [&](auto& e) { e.inputs.pop_back(); },
       "the IR has 2 inputs, the signature 1"},
  };
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.what);
    std::unique_ptr<kiln::fb::GraphEntryT> entry = kiln::compiler::graph_entry_ir(g);
    d.apply(*entry);
    try {
      read_back(*entry);
      ADD_FAILURE() << "the damaged IR was read as a graph";
    } catch (const IrFormatError& e) {
      EXPECT_EQ(std::string(e.what()), d.expected);
    }
  }
}

}  // namespace
