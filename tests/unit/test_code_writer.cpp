// The codegen's source writer (tools/compiler/src/code_writer.h): lines at
// their indentation, blocks that close themselves, directives at column 0,
// fresh names.
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
  w.indent();
  EXPECT_EQ(w.level(), 1);
  EXPECT_EQ(w.indentation(), "  ");
  w.dedent();
  EXPECT_EQ(w.level(), 0);
  EXPECT_THROW(w.dedent(), std::logic_error);
}

TEST(CodeWriter, FreshNamesAreUniqueAcrossPrefixesAndIds) {
  CodeWriter w;
  EXPECT_EQ(w.fresh_name("x", 3), "x3_0");
  EXPECT_EQ(w.fresh_name("x", 3), "x3_1");
  EXPECT_EQ(w.fresh_name("w", 12), "w12_2");
  // Each generator counts on its own.
  NameGenerator names;
  EXPECT_EQ(names.fresh("v", 1), "v1_0");
}

TEST(CodeWriter, TakeEmptiesTheWriter) {
  CodeWriter w;
  w.line("x;");
  EXPECT_EQ(w.take(), "x;\n");
  EXPECT_EQ(w.text(), "");
}

}  // namespace
