// Tracing: shapes, dtypes, broadcasting, and the errors a graph author sees.
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
    if (n.op == kiln::ir::Op::constant) EXPECT_EQ(n.dtype, kiln::DType::f16);
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
  for (int i = 0; i <= static_cast<int>(kiln::ir::Op::argmax); ++i) {
    const auto op = static_cast<kiln::ir::Op>(i);
    EXPECT_EQ(kiln::ir::op_from_name(kiln::ir::op_name(op)), op);
  }
  EXPECT_FALSE(kiln::ir::op_from_name("no_such_op").has_value());
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
  EXPECT_NE(error(DType::f32, {3, 4}, DType::f32, {5, 6}).find(
                "shapes [3, 4] and [5, 6] do not multiply"),
            std::string::npos);
  EXPECT_NE(error(DType::f32, {4}, DType::f32, {4, 6}).find("rank 2 or more"), std::string::npos);
  EXPECT_NE(error(DType::f32, {3, 4}, DType::bf16, {4, 6}).find("dtype mismatch: f32 and bf16"),
            std::string::npos);
  EXPECT_NE(error(DType::i32, {3, 4}, DType::i32, {4, 6}).find("f32, f16 or bf16, got i32"),
            std::string::npos);
  EXPECT_NE(error(DType::f32, {2, 1, 3, 4}, DType::f32, {1, 5, 4, 6})
                .find("broadcast only partly to [2, 5]"),
            std::string::npos);
  EXPECT_EQ(error(DType::f32, {2, 5, 3, 4}, DType::f32, {4, 6}), "");
}
