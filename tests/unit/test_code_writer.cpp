// The codegen's source writer (tools/compiler/src/code_writer.h): lines at
// their indentation, blocks that close themselves and chain branches,
// directives at column 0, fragments inserted where they go, fresh names.
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "code_writer.h"  // tools/compiler/src: the compiler's internals

namespace {

using kiln::compiler::codegen_detail::CodeWriter;
using kiln::compiler::codegen_detail::NameGenerator;

TEST(CodeWriter, LinesTakeTheIndentationOfTheirBlock) {
  CodeWriter w(1);
  w.line("const int64_t C = ", "8", ";");
  {
    auto loop = w.block("for (int64_t c = 0; c < C; ++c)");
    w.line("y[c] = x[c];");
    {
      auto inner = w.block("if (c == 0)");
      w.line("z = 1;");
    }
  }
  w.line("return;");
  EXPECT_EQ(w.text(),
            "  const int64_t C = 8;\n"
            "  for (int64_t c = 0; c < C; ++c) {\n"
            "    y[c] = x[c];\n"
            "    if (c == 0) {\n"
            "      z = 1;\n"
            "    }\n"
            "  }\n"
            "  return;\n");
}

TEST(CodeWriter, BlockTailFollowsTheBrace) {
  CodeWriter w;
  { auto s = w.block("struct S", ";"); }
  { auto b = w.block(""); }
  EXPECT_EQ(w.text(), "struct S {\n};\n{\n}\n");
}

TEST(CodeWriter, DirectivesAndEmptyLinesHaveNoIndentation) {
  CodeWriter w(2);
  w.directive("#pragma unroll");
  w.line();
  w.line("x = 0;");
  EXPECT_EQ(w.text(), "#pragma unroll\n\n    x = 0;\n");
}

TEST(CodeWriter, RawTextIsAppendedAsItIs) {
  CodeWriter inner(3);
  inner.line("a = b;");
  CodeWriter w(1);
  w.raw(inner.text()).line("c = d;");
  EXPECT_EQ(w.text(), "      a = b;\n  c = d;\n");
}

TEST(CodeWriter, IndentAndDedentByHand) {
  CodeWriter w;
  EXPECT_TRUE(w.empty());
  w.indent();
  EXPECT_EQ(w.level(), 1);
  w.line("for (;;)");
  w.indent();
  w.line("x = 0;");
  w.dedent();
  w.dedent();
  EXPECT_EQ(w.level(), 0);
  EXPECT_THROW(w.dedent(), std::logic_error);
  EXPECT_FALSE(w.empty());
  EXPECT_EQ(w.text(), "  for (;;)\n    x = 0;\n");
}

TEST(CodeWriter, ChainedBranchesShareOneBlock) {
  CodeWriter w(1);
  {
    auto branch = w.block("if (a)");
    w.line("x = 1;");
    branch.chain("else if (b)");
    w.line("x = 2;");
    branch.chain("else");
    w.line("x = 3;");
  }
  EXPECT_EQ(w.text(),
            "  if (a) {\n"
            "    x = 1;\n"
            "  } else if (b) {\n"
            "    x = 2;\n"
            "  } else {\n"
            "    x = 3;\n"
            "  }\n");
}

// A fragment is written before the writer reaches the place it goes to;
// its lines take that place's indentation, its directives and raw text stay.
TEST(CodeWriter, InsertedFragmentsTakeTheIndentationWhereTheyGo) {
  CodeWriter body;
  body.line("y = x;");
  {
    auto inner = body.block("if (y)");
    body.directive("#pragma unroll");
    body.line("z = y;");
    body.line();
  }
  body.raw("/* as is */\n");
  CodeWriter w;
  {
    auto loop = w.block("for (;;)");
    w.insert(body);
  }
  EXPECT_EQ(w.text(),
            "for (;;) {\n"
            "  y = x;\n"
            "  if (y) {\n"
            "#pragma unroll\n"
            "    z = y;\n"
            "\n"
            "  }\n"
            "/* as is */\n"
            "}\n");
  // The fragment itself is unchanged.
  EXPECT_EQ(body.text(), "y = x;\nif (y) {\n#pragma unroll\n  z = y;\n\n}\n/* as is */\n");
}

TEST(CodeWriter, NestedFragmentsAddTheirLevels) {
  CodeWriter statement;
  statement.line("a = b;");
  CodeWriter branch;
  {
    auto test = branch.block("if (c)");
    branch.insert(statement);
  }
  CodeWriter w(1);
  w.insert(branch);
  EXPECT_EQ(w.text(), "  if (c) {\n    a = b;\n  }\n");
}

TEST(NameGenerator, FreshNamesAreUniqueAcrossPrefixesAndIds) {
  NameGenerator names;
  EXPECT_EQ(names.fresh("x", 3), "x3_0");
  EXPECT_EQ(names.fresh("x", 3), "x3_1");
  EXPECT_EQ(names.fresh("w", 12), "w12_2");
  // Each generator counts on its own.
  NameGenerator other;
  EXPECT_EQ(other.fresh("v", 1), "v1_0");
}

}  // namespace
