#!/usr/bin/env python3
"""Fails when a Kiln module includes a header it may not use.

docs/architecture.md draws the modules and the arrows between them. This
script holds the same drawing as data (MODULES) and checks every #include of
every module's sources against it:

  * a module may include its own headers, public or private;
  * it may include another module's *public* headers (its include/ tree,
    `kiln/...`) only when the drawing has a path from it to that module;
  * it may never include another module's private headers (its src/), however
    they are reached: a relative path, or an include directory added to its
    target.

Tests, benchmarks and examples are not modules: they may look inside.

Usage: check_module_boundaries.py --root SOURCE_DIR
       check_module_boundaries.py --self-test
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Module:
    name: str
    # Directories (relative to the root) whose files belong to the module.
    # A file belongs to the module with the longest matching directory, so a
    # module nested in another's folder (runtime/jit in runtime/) is its own.
    dirs: tuple[str, ...]
    # The module's public include roots: what others include as <kiln/...>.
    public: tuple[str, ...]
    # Modules it may include directly (the arrows of the drawing). What those
    # may include, it may include too.
    uses: tuple[str, ...] = ()
    # Single files that are modules of their own inside another's folder.
    files: tuple[str, ...] = field(default_factory=tuple)
    # Include roots of headers the module shares with named friends only (the
    # runtime's internals the JIT is built on), and those friends.
    internal: tuple[str, ...] = ()
    friends: tuple[str, ...] = ()


MODULES = (
    Module("support", dirs=("support",), public=("support/include",)),
    Module("schemas", dirs=("schemas",), public=("schemas/include",), uses=("support",)),
    Module("runtime", dirs=("runtime",), public=("runtime/include",), uses=("schemas",),
           internal=("runtime/internal/include",), friends=("jit",)),
    Module("compiler", dirs=("tools/compiler",), public=("tools/compiler/include",),
           uses=("schemas",)),
    # kiln merge re-reads its inputs with the runtime's verifying reader.
    Module("package_merge", dirs=(), public=("tools/compiler/include",),
           uses=("compiler", "runtime"),
           files=("tools/compiler/src/package_merge.cpp",
                  "tools/compiler/include/kiln/compiler/package_merge.h")),
    Module("jit", dirs=("runtime/jit",), public=("runtime/jit/include",),
           uses=("runtime", "compiler")),
    Module("kiln-gen", dirs=("tools/kiln-gen",), public=(), uses=("compiler",)),
    Module("cli", dirs=("tools/kiln",), public=(), uses=("jit", "package_merge")),
)

# kiln/ headers that the build generates (they resolve nowhere in the tree).
GENERATED = {"kiln/abi/kiln_package_generated.h"}

SOURCE_SUFFIXES = {".h", ".hpp", ".inc", ".c", ".cc", ".cpp", ".cu", ".cuh"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.MULTILINE)


class Drawing:
    def __init__(self, modules: tuple[Module, ...]):
        self.modules = {m.name: m for m in modules}
        for m in modules:
            for used in m.uses:
                if used not in self.modules:
                    raise SystemExit(f"module {m.name} uses unknown module {used}")
        self.reachable = {m.name: self._closure(m.name) for m in modules}

    def _closure(self, name: str) -> set[str]:
        seen, todo = {name}, [name]
        while todo:
            for used in self.modules[todo.pop()].uses:
                if used not in seen:
                    seen.add(used)
                    todo.append(used)
        return seen

    def owner(self, rel: str) -> Module | None:
        """The module a file (path relative to the root) belongs to."""
        for m in self.modules.values():
            if rel in m.files:
                return m
        best, best_len = None, -1
        for m in self.modules.values():
            for d in m.dirs:
                if (rel == d or rel.startswith(d + "/")) and len(d) > best_len:
                    best, best_len = m, len(d)
        return best

    def visible(self, owner: Module, rel: str, includer: Module) -> bool:
        """Whether `includer` may see the header `rel` of `owner` at all."""
        if any(rel.startswith(p + "/") for p in owner.public):
            return True
        return includer.name in owner.friends and any(
            rel.startswith(p + "/") for p in owner.internal)


def module_sources(root: Path, drawing: Drawing):
    for m in drawing.modules.values():
        for d in m.dirs:
            for path in sorted((root / d).rglob("*")):
                if path.suffix in SOURCE_SUFFIXES and path.is_file():
                    rel = path.relative_to(root).as_posix()
                    if drawing.owner(rel) is m:
                        yield m, path
        for f in m.files:
            if (root / f).is_file():
                yield m, root / f


def resolve(root: Path, drawing: Drawing, including: Path, quote: str,
            name: str) -> list[str]:
    """Where an include may land in the tree: every candidate, relative paths."""
    found = []
    if quote == '"':
        local = (including.parent / name).resolve()
        if local.is_file():
            try:
                return [local.relative_to(root.resolve()).as_posix()]
            except ValueError:
                return []
    # Through an include directory: a public root, or any directory of a
    # module (a private src/ added to some target's include path).
    for m in drawing.modules.values():
        for base in m.public + m.internal + m.dirs:
            candidate = root / base / name
            if candidate.is_file():
                rel = candidate.relative_to(root).as_posix()
                if rel not in found:
                    found.append(rel)
    # A bare name in a private folder (src/foo.h reached as "foo.h").
    if not found and "/" not in name:
        for m in drawing.modules.values():
            for d in m.dirs:
                for candidate in (root / d).rglob(name):
                    rel = candidate.relative_to(root).as_posix()
                    if candidate.is_file() and rel not in found:
                        found.append(rel)
    return found


def check(root: Path, modules: tuple[Module, ...] = MODULES) -> list[str]:
    drawing = Drawing(modules)
    problems = []
    checked = 0
    for module, path in module_sources(root, drawing):
        text = path.read_text(encoding="utf-8", errors="replace")
        rel_src = path.relative_to(root).as_posix()
        for match in INCLUDE.finditer(text):
            quote, name = match.group(1), match.group(2)
            line = text.count("\n", 0, match.start()) + 1
            targets = resolve(root, drawing, path, quote, name)
            if not targets:
                if name.startswith("kiln/") and name not in GENERATED:
                    problems.append(f"{rel_src}:{line}: {module.name} includes {name}, "
                                    "which is no header of any module")
                continue  # a system or third-party header, or a generated one
            checked += 1
            # The include is fine when one of the places it may land is allowed.
            reasons = []
            for target in targets:
                owner = drawing.owner(target)
                if owner is None or owner is module:
                    reasons = []
                    break
                if not drawing.visible(owner, target, module):
                    reasons.append(f"{target} is private to {owner.name}")
                elif owner.name not in drawing.reachable[module.name]:
                    reasons.append(f"{target} is {owner.name}'s, which {module.name} may not use "
                                   f"(docs/architecture.md)")
                else:
                    reasons = []
                    break
            if reasons:
                problems.append(f"{rel_src}:{line}: {module.name} includes "
                                f"{quote}{name}{'>' if quote == '<' else quote}: "
                                + "; ".join(reasons))
    if checked == 0:
        problems.append(f"no Kiln include found under {root}: is --root the source tree?")
    return problems


def self_test() -> int:
    """The checker finds each kind of violation in a small tree, and passes a clean one."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = {
            "support/include/kiln/support/hex.h": "",
            "schemas/include/kiln/abi/format.h": '#include <kiln/support/hex.h>\n',
            "runtime/include/kiln/runtime.h": '#include <kiln/abi/format.h>\n',
            "runtime/src/cpu_module.h": "",
            "runtime/internal/include/kiln/runtime_internal/log_topics.h": "",
            "runtime/src/graph.cpp": '#include "cpu_module.h"\n#include <kiln/runtime.h>\n',
            "tools/compiler/include/kiln/compiler/ir.h": "",
            "tools/compiler/src/ir.cpp": '#include <kiln/compiler/ir.h>\n',
            "tools/compiler/src/package_merge.cpp": '#include <kiln/runtime.h>\n',
            "runtime/jit/include/kiln/jit/fallback_jit.h": '#include <kiln/runtime.h>\n',
            "runtime/jit/src/jit.cpp": ('#include <kiln/compiler/ir.h>\n'
                                        '#include <kiln/runtime_internal/log_topics.h>\n'),
            "tools/kiln-gen/main.cpp": '#include <kiln/compiler/ir.h>\n',
            "tools/kiln/main.cpp": '#include <kiln/jit/fallback_jit.h>\n',
        }
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        failures = []
        clean = check(root)
        if clean:
            failures.append(f"a clean tree was flagged: {clean}")
        bad = {
            # The JIT reaching into the runtime's private folder by include path...
            "runtime/jit/src/borrow.cpp": ('#include "cpu_module.h"\n', "private to runtime"),
            # ... or by a relative path.
            "runtime/jit/src/borrow2.cpp": ('#include "../../src/cpu_module.h"\n',
                                            "private to runtime"),
            # The runtime including a compiler header: no arrow points there.
            "runtime/src/upward.cpp": ('#include <kiln/compiler/ir.h>\n',
                                       "which runtime may not use"),
            # kiln-gen using the JIT: no arrow either.
            "tools/kiln-gen/jit_use.cpp": ('#include <kiln/jit/fallback_jit.h>\n',
                                           "which kiln-gen may not use"),
            # The runtime's internals are the JIT's only.
            "tools/compiler/src/internal.cpp": (
                '#include <kiln/runtime_internal/log_topics.h>\n', "private to runtime"),
            # A kiln/ header that is nowhere (a typo, or a header moved away).
            "tools/kiln/missing.cpp": ('#include "kiln/compiler/nowhere.h"\n',
                                       "no header of any module"),
        }
        for rel, (text, expected) in bad.items():
            (root / rel).write_text(text)
            problems = check(root)
            (root / rel).unlink()
            if not any(rel in p and expected in p for p in problems):
                failures.append(f"{rel}: expected a problem saying '{expected}', got {problems}")
        for f in failures:
            print(f"self-test FAILED: {f}")
        if not failures:
            print(f"self-test passed: a clean tree and {len(bad)} violations")
        return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, help="Kiln's source tree")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if not args.root:
        parser.error("--root or --self-test is required")
    problems = check(args.root)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} include(s) cross a module boundary; the allowed arrows are "
              "MODULES in this script and the drawing in docs/architecture.md")
        return 1
    print("every module includes only its own headers and its dependencies' public ones")
    return 0


if __name__ == "__main__":
    sys.exit(main())
