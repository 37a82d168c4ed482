// Tracing: shapes, dtypes, broadcasting, and the errors a graph author sees.
#include <cmath>
#include <stdexcept>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "kiln/graph.h"

namespace {

using kiln::TraceError;

template <typename F>
std::string trace_error(F body) {
  try {
    kiln::trace("g", body);
  } catch (const TraceError& e) {
    return e.what();
  }
  return "";
}

kiln::Outputs rmsnorm_graph() {
  auto n = kiln::sym("n", {.min = 1, .max = 1 << 20, .hot = {64, 1, 8}});
  auto x = kiln::input("x", kiln::bf16, {n, 4096});
  auto w = kiln::input("w", kiln::bf16, {4096});
  auto r = kiln::rsqrt(kiln::mean(kiln::square(kiln::cast(x, kiln::f32)), -1, true) + 1e-6f);
  return kiln::outputs(kiln::cast(kiln::cast(x, kiln::f32) * r, kiln::bf16) * w);
}

TEST(GraphApi, TracesShapesDtypesAndSymbols) {
  const kiln::ir::Graph g = kiln::trace("rmsnorm", &rmsnorm_graph);
  EXPECT_EQ(g.name, "rmsnorm");
  ASSERT_EQ(g.symbols.size(), 1u);
  EXPECT_EQ(g.symbols[0].name, "n");
  EXPECT_EQ(g.symbols[0].hot, (std::vector<int64_t>{1, 8, 64}));  // sorted
  ASSERT_EQ(g.inputs.size(), 2u);
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.output_names[0], "out0");
  const auto& out = g.node(g.outputs[0]);
  EXPECT_EQ(out.dtype, kiln::DType::bf16);
  EXPECT_EQ(kiln::ir::shape_to_string(g, out.shape), "[n, 4096]");
  // The mean keeps its dim.
  bool saw_mean = false;
  for (const auto& node : g.nodes) {
    if (node.op == kiln::ir::Op::reduce_mean) {
      saw_mean = true;
      EXPECT_TRUE(node.keepdim);
      EXPECT_EQ(kiln::ir::shape_to_string(g, node.shape), "[n, 1]");
    }
  }
  EXPECT_TRUE(saw_mean);
}

TEST(GraphApi, BroadcastingFollowsNumPy) {
  const auto g = kiln::trace("b", [] {
    auto n = kiln::sym("n");
    auto a = kiln::input("a", kiln::f32, {n, 1, 5});
    auto b = kiln::input("b", kiln::f32, {3, 1});
    auto c = kiln::input("c", kiln::f32, {1});
    return kiln::outputs(a + b, b * c, kiln::sum(a * b, -1), kiln::sum(a * b, -1, true));
  });
  EXPECT_EQ(kiln::ir::shape_to_string(g, g.node(g.outputs[0]).shape), "[n, 3, 5]");
  EXPECT_EQ(kiln::ir::shape_to_string(g, g.node(g.outputs[1]).shape), "[3, 1]");
  EXPECT_EQ(kiln::ir::shape_to_string(g, g.node(g.outputs[2]).shape), "[n, 3]");
  EXPECT_EQ(kiln::ir::shape_to_string(g, g.node(g.outputs[3]).shape), "[n, 3, 1]");
}

TEST(GraphApi, ComparisonsGiveBoolAndWhereSelects) {
  const auto g = kiln::trace("w", [] {
    auto x = kiln::input("x", kiln::f64, {7});
    auto y = kiln::input("y", kiln::f64, {7});
    auto m = x > y;
    return kiln::outputs(m, kiln::where(m, x, y)).named({"mask", "larger"});
  });
  EXPECT_EQ(g.node(g.outputs[0]).dtype, kiln::DType::boolean);
  EXPECT_EQ(g.node(g.outputs[1]).dtype, kiln::DType::f64);
  EXPECT_EQ(g.output_names[1], "larger");
}

TEST(GraphApi, BroadcastErrorNamesGraphOpAndShapes) {
  const std::string e = trace_error([] {
    auto n = kiln::sym("n");
    auto x = kiln::input("x", kiln::f32, {n, 4096});
    auto w = kiln::input("w", kiln::f32, {4095});
    return kiln::outputs(x * w);
  });
  EXPECT_NE(e.find("graph 'g'"), std::string::npos) << e;
  EXPECT_NE(e.find("op 'mul'"), std::string::npos) << e;
  EXPECT_NE(e.find("[n, 4096]"), std::string::npos) << e;
  EXPECT_NE(e.find("[4095]"), std::string::npos) << e;
}

TEST(GraphApi, AScalarOnAnIntegerTensorMustBeAnIntegerItHolds) {
  // Truncated, `x < 2.5` was `x < 2` and `x * 0.5` was `x * 0`.
  const std::string lt = trace_error([] {
    auto x = kiln::input("x", kiln::i32, {4});
    return kiln::outputs(x < 2.5);
  });
  EXPECT_EQ(lt,
            "kiln: graph 'g': op 'lt': a scalar on an i32 tensor takes its dtype: expected an "
            "integer in [-2147483648, 2147483647], got 2.5 (kiln::cast the tensor to a float "
            "dtype for a fraction)");
  const std::string mul = trace_error([] {
    auto x = kiln::input("x", kiln::i64, {4});
    return kiln::outputs(0.5 * x);
  });
  EXPECT_NE(mul.find("op 'mul': a scalar on an i64 tensor"), std::string::npos) << mul;
  EXPECT_NE(mul.find("got 0.5"), std::string::npos) << mul;
  // Past the dtype's range, and not a number at all.
  EXPECT_NE(trace_error([] {
              auto x = kiln::input("x", kiln::i32, {4});
              return kiln::outputs(x + 3e9);
            }).find("got 3000000000"),
            std::string::npos);
  EXPECT_NE(trace_error([] {
              auto x = kiln::input("x", kiln::i32, {4});
              return kiln::outputs(kiln::maximum(x, std::nan("")));
            }).find("op 'maximum'"),
            std::string::npos);
  // An integral value is exact: a constant of the tensor's dtype.
  const kiln::ir::Graph g = kiln::trace("g", [] {
    auto x = kiln::input("x", kiln::i32, {4});
    return kiln::outputs(kiln::maximum(x * 2.0 - 1.0, -2147483648.0) > 2.0);
  });
  size_t constants = 0;
  for (const kiln::ir::Node& node : g.nodes) {
    if (node.op != kiln::ir::Op::constant) continue;
    ++constants;
    EXPECT_EQ(node.dtype, kiln::DType::i32);
  }
  EXPECT_EQ(constants, 4u);
}

TEST(GraphApi, DistinctSymbolsDoNotBroadcast) {
  const std::string e = trace_error([] {
    auto n = kiln::sym("n");
    auto m = kiln::sym("m");
    return kiln::outputs(kiln::input("a", kiln::f32, {n}) + kiln::input("b", kiln::f32, {m}));
  });
  EXPECT_NE(e.find("cannot broadcast [n] with [m]"), std::string::npos) << e;
}

TEST(GraphApi, DtypeErrors) {
  EXPECT_NE(trace_error([] {
              auto a = kiln::input("a", kiln::f32, {4});
              auto b = kiln::input("b", kiln::bf16, {4});
              return kiln::outputs(a + b);
            }).find("dtype mismatch: f32 and bf16"),
            std::string::npos);
  EXPECT_NE(trace_error([] {
              return kiln::outputs(kiln::exp(kiln::input("i", kiln::i32, {4})));
            }).find("op 'exp': expects a floating-point operand, got i32"),
            std::string::npos);
  EXPECT_NE(trace_error([] {
              auto x = kiln::input("x", kiln::f32, {4});
              return kiln::outputs(kiln::where(x, x, x));
            }).find("condition must be bool"),
            std::string::npos);
}

TEST(GraphApi, ReductionErrors) {
  EXPECT_EQ(trace_error([] {
              return kiln::outputs(kiln::sum(kiln::input("x", kiln::f32, {3, 4}), 5));
            }),
            "kiln: graph 'g': op 'reduce_sum': axis 5 is out of range for rank 2");
  EXPECT_EQ(trace_error([] {
              return kiln::outputs(kiln::max(kiln::input("x", kiln::f32, {3, 4}), {0, -3}));
            }),
            "kiln: graph 'g': op 'reduce_max': axis -3 is out of range for rank 2");
  EXPECT_EQ(trace_error([] {
              return kiln::outputs(kiln::mean(kiln::input("x", kiln::f32, {3, 4, 5}), {1, -2}));
            }),
            "kiln: graph 'g': op 'reduce_mean': axis -2 is named twice (as axis 1 of rank 3)");
  EXPECT_EQ(trace_error([] {
              return kiln::outputs(kiln::prod(kiln::input("x", kiln::f32, {3, 4}), {0, 0}));
            }),
            "kiln: graph 'g': op 'reduce_prod': axis 0 is named twice (as axis 0 of rank 2)");
  EXPECT_EQ(trace_error([] {
              return kiln::outputs(kiln::argmax(kiln::input("x", kiln::f32, {3, 4}), 2));
            }),
            "kiln: graph 'g': op 'argmax': axis 2 is out of range for rank 2");
  EXPECT_EQ(trace_error([] {
              return kiln::outputs(kiln::sum(kiln::input("x", kiln::f32, {3}), std::vector<int>{}));
            }),
            "kiln: graph 'g': op 'reduce_sum': no axis to reduce (kiln::all_axes(x) names every "
            "axis)");
  EXPECT_EQ(
      trace_error([] { return kiln::outputs(kiln::argmax(kiln::input("x", kiln::boolean, {3}))); }),
      "kiln: graph 'g': op 'argmax': expects a numeric operand, got bool");
  EXPECT_EQ(trace_error([] {
              return kiln::outputs(kiln::log_softmax(kiln::input("x", kiln::i32, {3}), 0));
            }),
            "kiln: graph 'g': op 'log_softmax': expects a floating-point operand, got i32");
  EXPECT_EQ(trace_error([] {
              return kiln::outputs(kiln::log_softmax(kiln::input("x", kiln::f32, {3}), 1));
            }),
            "kiln: graph 'g': op 'reduce_max': axis 1 is out of range for rank 1");
}

TEST(GraphApi, ReductionsOverAnyAxesShapeTheirOutputs) {
  const auto g = kiln::trace("r", [] {
    auto n = kiln::sym("n");
    auto x = kiln::input("x", kiln::bf16, {n, 3, 5});
    return kiln::outputs(kiln::sum(x, 0), kiln::mean(x, {0, 2}, true), kiln::max(x, {-1, 0}),
                         kiln::prod(x, kiln::all_axes(x)), kiln::argmax(x, 1, true),
                         kiln::argmax(x), kiln::log_softmax(x, 0));
  });
  auto shape = [&](size_t k) {
    return kiln::ir::shape_to_string(g, g.node(g.outputs.at(k)).shape);
  };
  EXPECT_EQ(shape(0), "[3, 5]");
  EXPECT_EQ(shape(1), "[1, 3, 1]");
  EXPECT_EQ(shape(2), "[3]");
  EXPECT_EQ(shape(3), "[]");
  EXPECT_EQ(shape(4), "[n, 1, 5]");
  EXPECT_EQ(shape(5), "[n, 3]");
  EXPECT_EQ(shape(6), "[n, 3, 5]");
  const auto& mean = g.node(g.outputs[1]);
  EXPECT_EQ(mean.axis, 0);
  EXPECT_EQ(mean.axes, (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(g.node(g.outputs[2]).axes, (std::vector<int32_t>{0, 2}));  // sorted
  EXPECT_TRUE(g.node(g.outputs[0]).axes.empty());                      // one axis: `axis` only
  EXPECT_EQ(g.node(g.outputs[3]).dtype, kiln::DType::bf16);
  EXPECT_EQ(g.node(g.outputs[4]).dtype, kiln::DType::i64);
  EXPECT_EQ(g.node(g.outputs[5]).axis, 2);
  EXPECT_EQ(g.node(g.outputs[6]).dtype, kiln::DType::bf16);
}

TEST(GraphApi, DeclarationErrors) {
  EXPECT_NE(trace_error([] {
              auto n = kiln::sym("n", {.min = 4, .max = 8, .hot = {16}});
              return kiln::outputs(kiln::input("x", kiln::f32, {n}));
            }).find("hot value 16 is outside [4, 8]"),
            std::string::npos);
  EXPECT_NE(trace_error([] {
              auto n = kiln::sym("n", {.min = 9, .max = 8});
              return kiln::outputs(kiln::input("x", kiln::f32, {n}));
            }).find("max 8 is below min 9"),
            std::string::npos);
  EXPECT_NE(trace_error([] {
              kiln::input("x", kiln::f32, {2});
              return kiln::outputs(kiln::input("x", kiln::f32, {2}));
            }).find("input declared twice"),
            std::string::npos);
  EXPECT_NE(trace_error([] {
              return kiln::outputs(kiln::input("bad name", kiln::f32, {2}));
            }).find("C++ identifiers"),
            std::string::npos);
  EXPECT_NE(trace_error([] {
              return kiln::outputs(kiln::input("x", kiln::f32, {0}));
            }).find("must be >= 1"),
            std::string::npos);
}

TEST(GraphApi, NamesMustBeUsableInTheGeneratedHeader) {
  EXPECT_NE(trace_error([] {
              return kiln::outputs(kiln::input("new", kiln::f32, {2}));
            }).find("not keywords or reserved names"),
            std::string::npos);
  EXPECT_NE(trace_error([] {
              return kiln::outputs(kiln::input("__x", kiln::f32, {2}));
            }).find("reserved"),
            std::string::npos);
  EXPECT_NE(trace_error([] {
              return kiln::outputs(kiln::input("x", kiln::f32, {2})).named({"stream"});
            }).find("output name 'stream'"),
            std::string::npos);
  auto body = [] { return kiln::outputs(kiln::input("x", kiln::f32, {2})); };
  EXPECT_THROW(kiln::trace("package", body), TraceError);
  EXPECT_THROW(kiln::trace("class", body), TraceError);
  EXPECT_NO_THROW(kiln::trace("my_graph_2", body));
}

TEST(GraphApi, OpsOutsideATraceAreErrors) {
  EXPECT_THROW(kiln::input("x", kiln::f32, {2}), TraceError);
  EXPECT_THROW(kiln::sym("n"), TraceError);
}

TEST(GraphApi, ScalarOperandsTakeTheTensorsDtype) {
  const auto g = kiln::trace("s", [] {
    auto x = kiln::input("x", kiln::f16, {8});
    return kiln::outputs(2.0 * x + 1.0);
  });
  for (const auto& n : g.nodes) {
    if (n.op == kiln::ir::Op::constant) {
      EXPECT_EQ(n.dtype, kiln::DType::f16);
    }
  }
}

TEST(GraphApi, CompositesAreBuiltFromPrimitives) {
  const auto g = kiln::trace("c", [] {
    auto x = kiln::input("x", kiln::bf16, {4, 16});
    auto w = kiln::input("w", kiln::bf16, {16});
    auto b = kiln::input("b", kiln::bf16, {16});
    return kiln::outputs(kiln::softmax(x), kiln::layernorm(x, w, b), kiln::rmsnorm(x, w));
  });
  for (int32_t o : g.outputs) {
    EXPECT_EQ(g.node(o).dtype, kiln::DType::bf16);
    EXPECT_EQ(kiln::ir::shape_to_string(g, g.node(o).shape), "[4, 16]");
  }
  int reductions = 0;
  for (const auto& n : g.nodes) reductions += kiln::ir::is_reduction(n.op) ? 1 : 0;
  EXPECT_EQ(reductions, 2 + 2 + 1);
}

TEST(GraphApi, OpNamesRoundTrip) {
  // Every op of the enum, whatever was appended last: op_name throws past it.
  int ops = 0;
  for (int i = 0;; ++i) {
    const auto op = static_cast<kiln::ir::Op>(i);
    std::string_view name;
    try {
      name = kiln::ir::op_name(op);
    } catch (const std::logic_error&) {
      break;
    }
    EXPECT_EQ(kiln::ir::op_from_name(name), op);
    ++ops;
  }
  EXPECT_GT(ops, static_cast<int>(kiln::ir::Op::iota));
  EXPECT_FALSE(kiln::ir::op_from_name("no_such_op").has_value());
}

TEST(GraphApi, ShapeOpsShapeTheirResults) {
  const auto g = kiln::trace("v", [] {
    auto n = kiln::sym("n");
    auto x = kiln::input("x", kiln::f32, {n, 4, 6});
    auto ids = kiln::input("ids", kiln::i32, {n, 3});
    auto t = kiln::input("t", kiln::bf16, {100, 8});
    return kiln::outputs(kiln::reshape(x, {n, 24}), kiln::reshape(x, {2, n, -1}),
                         kiln::unsqueeze(x, -1), kiln::squeeze(kiln::unsqueeze(x, 0), 0),
                         kiln::expand(x, {2, n, -1, 6}), kiln::transpose(x, 0, -1),
                         kiln::permute(x, {1, 2, 0}), kiln::slice(x, 2, 1, -1, 2),
                         kiln::concat({x, x, kiln::slice(x, 1, 0, 1)}, 1), kiln::embedding(t, ids),
                         kiln::gather(x, ids, 1), kiln::iota({n, 1}, 0, kiln::f32));
  });
  auto shape = [&](size_t k) {
    return kiln::ir::shape_to_string(g, g.node(g.outputs.at(k)).shape);
  };
  auto op = [&](size_t k) { return g.node(g.outputs.at(k)).op; };
  EXPECT_EQ(shape(0), "[n, 24]");
  EXPECT_EQ(shape(1), "[2, n, 12]");
  EXPECT_EQ(shape(2), "[n, 4, 6, 1]");
  EXPECT_EQ(op(2), kiln::ir::Op::reshape);
  // unsqueeze then squeeze of the same axis: no node at all.
  EXPECT_EQ(op(3), kiln::ir::Op::input);
  EXPECT_EQ(shape(4), "[2, n, 4, 6]");
  EXPECT_EQ(op(4), kiln::ir::Op::expand);
  EXPECT_EQ(shape(5), "[6, 4, n]");
  EXPECT_EQ(g.node(g.outputs[5]).axes, (std::vector<int32_t>{2, 1, 0}));
  EXPECT_EQ(shape(6), "[4, 6, n]");
  EXPECT_EQ(shape(7), "[n, 4, 2]");  // elements 1 and 3 of 6 (stop -1 = 5)
  EXPECT_EQ(g.node(g.outputs[7]).params, (std::vector<int64_t>{1, 5, 2}));
  EXPECT_EQ(shape(8), "[n, 9, 6]");
  EXPECT_EQ(shape(9), "[n, 3, 8]");
  EXPECT_EQ(g.node(g.outputs[9]).dtype, kiln::DType::bf16);
  EXPECT_EQ(shape(10), "[n, n, 3, 6]");
  EXPECT_EQ(shape(11), "[n, 1]");
  EXPECT_EQ(g.node(g.outputs[11]).dtype, kiln::DType::f32);
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    EXPECT_EQ(kiln::ir::shape_op_error(g, g.outputs[k]), "") << k;
  }
}

// Views of views fold: one reshape of the original, one permute; identities
// and leading ones need no reshape at all.
TEST(GraphApi, ViewsOfViewsFold) {
  const auto g = kiln::trace("f", [] {
    auto n = kiln::sym("n");
    auto x = kiln::input("x", kiln::f32, {n, 4, 6});
    auto c = kiln::constant(2.0);
    return kiln::outputs(kiln::reshape(kiln::reshape(x, {n, 24}), {n, 6, 4}),
                         kiln::permute(kiln::permute(x, {1, 2, 0}), {2, 0, 1}),
                         kiln::transpose(kiln::transpose(x, 1, 2), 0, 1),
                         kiln::reshape(x, {1, 1, n, 4, 6}), kiln::reshape(c, {1, 1}),
                         kiln::slice(x, 1, 0, 100), kiln::expand(x, {n, 4, 6}),
                         kiln::concat({x}, 0), kiln::expand(kiln::unsqueeze(x, 0), {3, n, 4, 6}));
  });
  const auto& r = g.node(g.outputs[0]);
  EXPECT_EQ(r.op, kiln::ir::Op::reshape);
  EXPECT_EQ(g.node(r.inputs[0]).op, kiln::ir::Op::input);
  EXPECT_EQ(g.node(g.outputs[1]).op, kiln::ir::Op::input);  // the identity
  const auto& p = g.node(g.outputs[2]);
  EXPECT_EQ(p.op, kiln::ir::Op::permute);
  // (x's dims 0, 2, 1, then the first two swapped) = x's 2, 0, 1.
  EXPECT_EQ(p.axes, (std::vector<int32_t>{2, 0, 1}));
  EXPECT_EQ(kiln::ir::shape_to_string(g, p.shape), "[6, n, 4]");
  EXPECT_EQ(g.node(p.inputs[0]).op, kiln::ir::Op::input);
  // Leading ones only: a broadcast (it fuses, and a scalar has no buffer).
  EXPECT_EQ(g.node(g.outputs[3]).op, kiln::ir::Op::expand);
  EXPECT_EQ(g.node(g.outputs[4]).op, kiln::ir::Op::expand);
  EXPECT_EQ(kiln::ir::shape_to_string(g, g.node(g.outputs[4]).shape), "[1, 1]");
  for (size_t k = 5; k < 8; ++k) EXPECT_EQ(g.node(g.outputs[k]).op, kiln::ir::Op::input) << k;
  // A broadcast of a broadcast: one, of x.
  const auto& e = g.node(g.outputs[8]);
  EXPECT_EQ(e.op, kiln::ir::Op::expand);
  EXPECT_EQ(g.node(e.inputs[0]).op, kiln::ir::Op::input);
}

TEST(GraphApi, ShapeOpErrorsSayExpectedAndGot) {
  auto err = [](kiln::Outputs (*body)()) { return trace_error(body); };
  EXPECT_EQ(err([] {
              auto n = kiln::sym("n");
              return kiln::outputs(kiln::reshape(kiln::input("x", kiln::f32, {n, 4}), {8, n}));
            }),
            "kiln: graph 'g': op 'reshape': expected a shape of 4*n elements (as [n, 4]: the "
            "same symbols and constant product), got [8, n] (8*n)");
  EXPECT_EQ(err([] {
              auto n = kiln::sym("n");
              auto m = kiln::sym("m");
              return kiln::outputs(kiln::reshape(kiln::input("x", kiln::f32, {n, m}), {m, m}));
            }),
            "kiln: graph 'g': op 'reshape': expected a shape of n*m elements (as [n, m]: the "
            "same symbols and constant product), got [m, m] (m*m)");
  EXPECT_EQ(err([] {
              auto n = kiln::sym("n");
              return kiln::outputs(kiln::reshape(kiln::input("x", kiln::f32, {n, 6}), {-1, 4}));
            }),
            "kiln: graph 'g': op 'reshape': cannot infer the -1 of [-1, 4] from [n, 6] (6*n "
            "elements): expected what is left to be a constant or one symbol");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::reshape(kiln::input("x", kiln::f32, {6}), {-1, -1}));
            }),
            "kiln: graph 'g': op 'reshape': more than one dim is -1 (at most one is inferred)");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::squeeze(kiln::input("x", kiln::f32, {3, 4}), 1));
            }),
            "kiln: graph 'g': op 'squeeze': expected a dim of 1 at axis 1, got 4 in [3, 4]");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::unsqueeze(kiln::input("x", kiln::f32, {3, 4}), 3));
            }),
            "kiln: graph 'g': op 'unsqueeze': axis 3 is out of range: expected [-3, 2] for rank 2");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::expand(kiln::input("x", kiln::f32, {3, 4}), {4, 4}));
            }),
            "kiln: graph 'g': op 'expand': cannot broadcast [3, 4] to [4, 4]: expected dim 0 to "
            "be 3 (or the operand's dim to be 1), got 4");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::broadcast_to(kiln::input("x", kiln::f32, {3, 4}), {4}));
            }),
            "kiln: graph 'g': op 'broadcast_to': expected a shape of rank >= 2 (the rank of "
            "[3, 4]), got rank 1");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::permute(kiln::input("x", kiln::f32, {3, 4}), {0}));
            }),
            "kiln: graph 'g': op 'permute': expected a permutation of 2 axes (the rank of [3, 4]), "
            "got 1");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::permute(kiln::input("x", kiln::f32, {3, 4}), {1, -1}));
            }),
            "kiln: graph 'g': op 'permute': axis -1 is named twice (as axis 1 of rank 2)");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::transpose(kiln::input("x", kiln::f32, {3, 4}), 0, 2));
            }),
            "kiln: graph 'g': op 'transpose': axis 2 is out of range for rank 2");
  EXPECT_EQ(err([] {
              auto n = kiln::sym("n");
              return kiln::outputs(kiln::slice(kiln::input("x", kiln::f32, {n, 4}), 0, 0, 2));
            }),
            "kiln: graph 'g': op 'slice': expected a constant dim at axis 0, got n in [n, 4]");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::slice(kiln::input("x", kiln::f32, {3, 4}), 1, 3, 1));
            }),
            "kiln: graph 'g': op 'slice': expected at least one element, got the empty slice 3:1 "
            "of a dim of 4");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::slice(kiln::input("x", kiln::f32, {3, 4}), 1, 0, 4, 0));
            }),
            "kiln: graph 'g': op 'slice': expected a step >= 1, got 0");
  EXPECT_EQ(err([] {
              auto a = kiln::input("a", kiln::f32, {3, 4});
              auto b = kiln::input("b", kiln::f32, {2, 5});
              return kiln::outputs(kiln::concat({a, b}, 0));
            }),
            "kiln: graph 'g': op 'concat': tensor 1 is [2, 5]; expected [3, 4] but along axis 0");
  EXPECT_EQ(err([] {
              auto a = kiln::input("a", kiln::f32, {3, 4});
              auto b = kiln::input("b", kiln::f16, {3, 4});
              return kiln::outputs(kiln::concat({a, b}, 0));
            }),
            "kiln: graph 'g': op 'concat': dtype mismatch: tensor 1 is f16, expected f32 (insert "
            "kiln::cast)");
  EXPECT_EQ(err([] {
              auto n = kiln::sym("n");
              auto a = kiln::input("a", kiln::f32, {n, 4});
              return kiln::outputs(kiln::concat({a, a}, 0));
            }),
            "kiln: graph 'g': op 'concat': expected a constant size along axis 0, got n for "
            "tensor 0 (a dim is one constant or one symbol, not a sum)");
  EXPECT_EQ(err([] { return kiln::outputs(kiln::concat({}, 0)); }),
            "kiln: graph 'g': op 'concat': expected one or more tensors, got none");
  EXPECT_EQ(err([] {
              auto t = kiln::input("t", kiln::f32, {10, 4});
              return kiln::outputs(kiln::gather(t, kiln::input("i", kiln::f32, {3})));
            }),
            "kiln: graph 'g': op 'gather': expects i32 or i64 indices, got f32");
  EXPECT_EQ(err([] {
              auto t = kiln::input("t", kiln::f32, {10, 4});
              return kiln::outputs(kiln::embedding(t, kiln::input("i", kiln::boolean, {3})));
            }),
            "kiln: graph 'g': op 'embedding': expects i32 or i64 indices, got bool");
  EXPECT_EQ(err([] {
              auto t = kiln::input("t", kiln::f32, {10, 4});
              return kiln::outputs(kiln::gather(t, kiln::input("i", kiln::i32, {3}), 2));
            }),
            "kiln: graph 'g': op 'gather': axis 2 is out of range for rank 2");
  EXPECT_EQ(err([] {
              auto t = kiln::input("t", kiln::f32, {2, 2, 2, 2, 2});
              return kiln::outputs(kiln::gather(t, kiln::input("i", kiln::i32, {2, 2, 2, 2, 2})));
            }),
            "kiln: graph 'g': op 'gather': the result's rank 9 exceeds 8");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::iota({3, 4}, 2));
            }),
            "kiln: graph 'g': op 'iota': axis 2 is out of range for rank 2");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::iota({3, 4}, 0, kiln::boolean));
            }),
            "kiln: graph 'g': op 'iota': expected a numeric dtype, got bool");
  EXPECT_EQ(err([] {
              return kiln::outputs(kiln::iota({3, 0}, 0));
            }),
            "kiln: graph 'g': op 'iota': dimension 0 must be >= 1");
}

// What a package read back is checked against (ir::shape_op_error): the
// tracer's nodes pass, and each field that codegen indexes by is checked.
TEST(GraphApi, ShapeOpErrorNamesTheNodeAndWhatIsWrong) {
  auto g = kiln::trace("v", [] {
    auto x = kiln::input("x", kiln::f32, {3, 4});
    auto i = kiln::input("i", kiln::i64, {2});
    return kiln::outputs(kiln::transpose(x, 0, 1), kiln::slice(x, 1, 1, 3), kiln::concat({x, x}, 0),
                         kiln::gather(x, i, 1), kiln::iota({3}, 0), kiln::reshape(x, {12}),
                         kiln::expand(x, {2, 3, 4}));
  });
  auto id = [&](size_t k) { return g.outputs.at(k); };
  auto node = [&](size_t k) -> kiln::ir::Node& { return g.nodes.at(static_cast<size_t>(id(k))); };
  for (size_t k = 0; k < g.outputs.size(); ++k) EXPECT_EQ(kiln::ir::shape_op_error(g, id(k)), "");
  const std::string p = "node " + std::to_string(id(0)) + " (permute): ";
  node(0).axes = {1, 1};
  EXPECT_EQ(kiln::ir::shape_op_error(g, id(0)),
            p + "expected a permutation of the 2 axes, got [1, 1]");
  node(0).axes = {0, 1};
  EXPECT_EQ(kiln::ir::shape_op_error(g, id(0)), p + "expected shape [3, 4], got [4, 3]");
  const std::string s = "node " + std::to_string(id(1)) + " (slice): ";
  node(1).params = {1, 5, 1};
  EXPECT_EQ(kiln::ir::shape_op_error(g, id(1)),
            s + "expected 0 <= start < stop <= 4 and step >= 1, got 1:5:1");
  node(1).params = {0, 3, 1};
  EXPECT_EQ(kiln::ir::shape_op_error(g, id(1)), s + "expected shape [3, 3], got [3, 2]");
  node(1).axis = 2;
  EXPECT_EQ(kiln::ir::shape_op_error(g, id(1)), s + "expected an axis in [0, 2), got 2");
  const std::string c = "node " + std::to_string(id(2)) + " (concat): ";
  node(2).shape[0] = kiln::ir::Dim::constant(7);
  EXPECT_EQ(kiln::ir::shape_op_error(g, id(2)), c + "expected shape [6, 4], got [7, 4]");
  node(2).inputs.push_back(g.inputs[1]);
  EXPECT_EQ(kiln::ir::shape_op_error(g, id(2)), c + "expected dtype f32 for operand 2, got i64");
  const std::string ga = "node " + std::to_string(id(3)) + " (gather): ";
  std::swap(node(3).inputs[0], node(3).inputs[1]);
  EXPECT_EQ(kiln::ir::shape_op_error(g, id(3)), ga + "expected an axis in [0, 1), got 1");
  node(3).axis = 0;
  EXPECT_EQ(kiln::ir::shape_op_error(g, id(3)), ga + "expected i32 or i64 indices, got f32");
  const std::string io = "node " + std::to_string(id(4)) + " (iota): ";
  node(4).axis = -1;
  EXPECT_EQ(kiln::ir::shape_op_error(g, id(4)), io + "expected an axis in [0, 1), got -1");
  const std::string r = "node " + std::to_string(id(5)) + " (reshape): ";
  node(5).shape = {kiln::ir::Dim::constant(13)};
  EXPECT_EQ(kiln::ir::shape_op_error(g, id(5)),
            r + "expected as many elements as [3, 4], got [13]");
  const std::string e = "node " + std::to_string(id(6)) + " (expand): ";
  node(6).shape = {kiln::ir::Dim::constant(3), kiln::ir::Dim::constant(1)};
  EXPECT_EQ(kiln::ir::shape_op_error(g, id(6)),
            e + "expected a shape [3, 4] broadcasts to, got [3, 1]");
}

}  // namespace

TEST(GraphApi, MatmulShapesAndErrors) {
  const kiln::ir::Graph g = kiln::trace("mm", [] {
    auto n = kiln::sym("n");
    auto x = kiln::input("x", kiln::bf16, {4, n, 64});
    auto w = kiln::input("w", kiln::bf16, {64, 32});
    return kiln::outputs(kiln::matmul(x, w));
  });
  const auto& out = g.node(g.outputs[0]);
  EXPECT_EQ(out.op, kiln::ir::Op::matmul);
  EXPECT_EQ(out.dtype, kiln::DType::bf16);
  EXPECT_EQ(kiln::ir::shape_to_string(g, out.shape), "[4, n, 32]");

  auto error = [](kiln::DType ta, std::vector<kiln::DimArg> sa, kiln::DType tb,
                  std::vector<kiln::DimArg> sb) {
    static kiln::DType s_ta, s_tb;
    static std::vector<kiln::DimArg> s_sa, s_sb;
    s_ta = ta, s_tb = tb, s_sa = std::move(sa), s_sb = std::move(sb);
    return trace_error([] {
      return kiln::outputs(
          kiln::matmul(kiln::input("a", s_ta, s_sa), kiln::input("b", s_tb, s_sb)));
    });
  };
  using kiln::DType;
  EXPECT_NE(error(DType::f32, {3, 4}, DType::f32, {5, 6})
                .find("shapes [3, 4] and [5, 6] do not multiply"),
            std::string::npos);
  EXPECT_NE(error(DType::f32, {4}, DType::f32, {4, 6}).find("rank 2 or more"), std::string::npos);
  EXPECT_NE(error(DType::f32, {3, 4}, DType::bf16, {4, 6}).find("dtype mismatch: f32 and bf16"),
            std::string::npos);
  EXPECT_NE(error(DType::i32, {3, 4}, DType::i32, {4, 6}).find("f32, f16 or bf16, got i32"),
            std::string::npos);
  EXPECT_EQ(error(DType::f32, {2, 5, 3, 4}, DType::f32, {4, 6}), "");

  // Batch dims that broadcast only partly: each such operand is expanded to
  // the result's batch dims first (a GEMM has one batch stride).
  const kiln::ir::Graph p = kiln::trace("partial", [] {
    auto a = kiln::input("a", kiln::f32, {2, 1, 3, 4});
    auto b = kiln::input("b", kiln::f32, {5, 4, 6});
    return kiln::outputs(kiln::matmul(a, b));
  });
  const auto& mm = p.node(p.outputs[0]);
  EXPECT_EQ(kiln::ir::shape_to_string(p, mm.shape), "[2, 5, 3, 6]");
  EXPECT_EQ(p.node(mm.inputs[0]).op, kiln::ir::Op::expand);
  EXPECT_EQ(kiln::ir::shape_to_string(p, p.node(mm.inputs[0]).shape), "[2, 5, 3, 4]");
  EXPECT_EQ(p.node(mm.inputs[1]).op, kiln::ir::Op::expand);
  EXPECT_EQ(kiln::ir::shape_to_string(p, p.node(mm.inputs[1]).shape), "[2, 5, 4, 6]");
}
