#!/usr/bin/env python3
"""Checks that the files the README shows are the files the tests build.

A fenced block preceded by a comment naming a file of the repository

    <!-- file: tests/integration/consumer/CMakeLists.txt -->
    ```cmake
    ...
    ```

must hold exactly that file's text (the comment may be followed by blank
lines, nothing else). Each directory given with --complete must have every
file under it shown that way, so the README shows the whole project that
the integration test builds, not part of it.

Usage: check_readme_files.py [--root DIR] [--complete SUBDIR]... [FILE.md ...]
         DIR: the repository root, which the named paths are relative to
         (default: the current directory); FILE.md default: DIR/README.md
       check_readme_files.py --self-test
"""

import os
import re
import sys
import tempfile

MARKER = re.compile(r"^\s*<!--\s*file:\s*(\S+)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})")


def shown_files(lines, name):
    """{path: (line number of the marker, the fenced block's text)}, and errors."""
    shown, errors = {}, []
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        if not marker:
            i += 1
            continue
        path, at = marker.group(1), i + 1
        i += 1
        while i < len(lines) and not lines[i].strip():
            i += 1
        fence = FENCE.match(lines[i]) if i < len(lines) else None
        if not fence:
            errors.append(f"{name}:{at}: '{path}' is not followed by a fenced block")
            continue
        indent, ticks = fence.group(1), fence.group(2)
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(ticks):
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            i += 1
        if i == len(lines):
            errors.append(f"{name}:{at}: the block after '{path}' is not closed")
            break
        i += 1
        if path in shown:
            errors.append(f"{name}:{at}: '{path}' is shown twice (also at line {shown[path][0]})")
        shown[path] = (at, "".join(line + "\n" for line in body))
    return shown, errors


def first_difference(want, got):
    want_lines, got_lines = want.splitlines(), got.splitlines()
    for n, (w, g) in enumerate(zip(want_lines, got_lines), start=1):
        if w != g:
            return f"line {n}: the file has {w!r}, the README {g!r}"
    if len(want_lines) != len(got_lines):
        return f"the file has {len(want_lines)} lines, the README {len(got_lines)}"
    return "they differ in trailing whitespace or the final newline"


def check(markdown_files, root, complete_dirs):
    errors, shown_anywhere = [], set()
    for md in markdown_files:
        with open(md, encoding="utf-8") as f:
            lines = f.read().splitlines()
        name = os.path.relpath(md, root)
        shown, found_errors = shown_files(lines, name)
        errors += found_errors
        for path, (at, text) in shown.items():
            shown_anywhere.add(os.path.normpath(path))
            full = os.path.join(root, path)
            if not os.path.isfile(full):
                errors.append(f"{name}:{at}: '{path}' does not exist")
                continue
            with open(full, encoding="utf-8") as f:
                want = f.read()
            if want != text:
                errors.append(f"{name}:{at}: the block differs from '{path}': "
                              f"{first_difference(want, text)}")
    for directory in complete_dirs:
        for dirpath, _, files in os.walk(os.path.join(root, directory)):
            for file in sorted(files):
                path = os.path.normpath(os.path.relpath(os.path.join(dirpath, file), root))
                if path not in shown_anywhere:
                    errors.append(f"'{path}' is in {directory}, which the README shows whole, "
                                  "but no block shows it")
    return errors


def self_test():
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "proj"))

        def write(path, text):
            with open(os.path.join(root, path), "w", encoding="utf-8") as f:
                f.write(text)

        write("proj/a.txt", "one\n  two\n")
        write("proj/b.txt", "b\n")
        good = ("<!-- file: proj/a.txt -->\n\n```text\none\n  two\n```\n"
                "- item:\n  <!-- file: proj/b.txt -->\n  ```\n  b\n  ```\n")
        cases = [
            ("equal blocks, one indented in a list", good, [], 0),
            ("a changed line", good.replace("  two", "  three"), [], 1),
            ("a missing final line", good.replace("  two\n", ""), [], 1),
            ("a file not shown", good.split("- item")[0], ["proj"], 1),
            ("both shown", good, ["proj"], 0),
            ("no block after the marker", "<!-- file: proj/a.txt -->\ntext\n", [], 1),
            ("a file that does not exist", "<!-- file: proj/c.txt -->\n```\nc\n```\n", [], 1),
            ("an unclosed block", "<!-- file: proj/a.txt -->\n```\none\n", [], 1),
        ]
        failed = 0
        for what, text, complete, want_errors in cases:
            write("README.md", text)
            errors = check([os.path.join(root, "README.md")], root, complete)
            if len(errors) != want_errors:
                print(f"self-test '{what}': {len(errors)} errors, want {want_errors}: {errors}")
                failed += 1
        print("self-test:", "FAILED" if failed else "ok")
        return 1 if failed else 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    root, complete, files = ".", [], []
    args = iter(argv)
    for arg in args:
        if arg == "--root":
            root = next(args)
        elif arg == "--complete":
            complete.append(next(args))
        else:
            files.append(arg)
    if not files:
        files = [os.path.join(root, "README.md")]
    errors = check(files, root, complete)
    for e in errors:
        print(e)
    if errors:
        return 1
    print(f"ok: every block marked <!-- file: ... --> in {', '.join(files)} equals its file")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
