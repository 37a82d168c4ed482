#!/usr/bin/env python3
"""Turns the C++ examples of docs/graph-api.md into graphs that a test traces.

Each ```cpp block of the page is a few lines of a graph body. It becomes

    KILN_GRAPH(example_<line>) {
      auto n = kiln::sym("n");     // unless the block declares n itself
      <the block>
      return kiln::outputs(<the variable its last line declares>);
    }

(a block that ends in a return statement is left as it is), and the comment
after the last line, when it starts with a dtype ("f32 [n, 64]"), is what
the test expects the graph's first output to be, as "<line>|<dtype> <shape>".

Usage: graph_api_examples.py PAGE.md OUT.cpp
"""

import re
import sys

DECLARATION = re.compile(r"^\s*auto\s+(\w+)\s*=")
EXPECTED = re.compile(r"//\s*((?:f32|f16|bf16|f64|i32|i64|bool)\s*\[[^\]]*\])")


def examples(lines):
    """(line number of the block, the block's lines) for each ```cpp block."""
    found, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```cpp":
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i].strip())
                i += 1
            found.append((start, body))
        i += 1
    return found


def graph(start, body):
    last = body[-1]
    code = "\n  ".join(body)
    declares_n = any(re.match(r"^\s*auto\s+n\s*=", line) for line in body)
    preamble = "" if declares_n else 'auto n = kiln::sym("n");\n  '
    expected = EXPECTED.search(last)
    if last.startswith("return"):
        ret = ""
    else:
        declared = DECLARATION.match(last)
        if not declared:
            raise SystemExit(f"line {start}: the block's last line declares no variable")
        ret = f"\n  return kiln::outputs({declared.group(1)});"
    source = f"KILN_GRAPH(example_{start}) {{\n  {preamble}{code}{ret}\n}}\n"
    return source, (f'"{start}|{expected.group(1)}"' if expected else None)


def main(argv):
    page, out = argv
    with open(page, encoding="utf-8") as f:
        lines = f.read().splitlines()
    graphs, expectations = [], []
    for start, body in examples(lines):
        source, expected = graph(start, body)
        graphs.append(source)
        if expected:
            expectations.append(expected)
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"// Generated from {page} by tests/docs/graph_api_examples.py. Do not edit.\n")
        f.write("#include <cmath>\n\n#include <kiln/graph.h>\n\n")
        f.write("\n".join(graphs))
        f.write("\n// \"<line of the block>|<dtype> <shape>\" of each example's first output.\n")
        f.write("extern const char* const kExpectedOutputs[];\n")
        f.write("const char* const kExpectedOutputs[] = {\n    ")
        f.write(",\n    ".join(expectations + ["nullptr"]))
        f.write("};\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
