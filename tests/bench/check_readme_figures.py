#!/usr/bin/env python3
"""Checks that every figure in the README's (and docs') measurement tables
comes from the results file the table cites.

A measurement table (one under a "Benchmarks" or "Measured" heading, or whose header
names a unit or a peer: ms, µs, GB/s, TFLOP/s, bytes, %, Kiln, torch) must be
preceded, after the previous table or heading, by a comment naming its
sources:

    <!-- figures: tests/bench/results/2026-12-07-nvidia-h100-abc1234.jsonl -->

Each cited file must exist, must have been written whole by a committed
script (its last record is tests/bench/run.sh's "bench_run",
tests/bench/run_signature.sh's "signature_run" or tests/gpu/run.sh's "gpu_run"), and a GPU run must have passed ("gpu_run"
with "passed": true). Then every number in the table's cells must be a
value of some record of those files, as printed: rounded to the digits the
README shows, possibly as a percentage (x 100) or in ms/µs/s (x 1000 or
/ 1000). The first column (the row's label) and columns whose header says
"target", "quoted" or "peer" (figures quoted from ANCHORS.md, never measured
by Kiln's scripts) are not checked.

Usage: check_readme_figures.py [--root DIR] [FILE.md ...]
         DIR: the repository root, which the cited paths are relative to
         (default: the current directory); FILE.md default: DIR/README.md
       check_readme_figures.py --self-test
"""

import json
import os
import re
import sys

MARKER = re.compile(r"<!--\s*figures:\s*(.*?)\s*-->")
MEASUREMENT_HEADING = re.compile(r"benchmark|measured", re.IGNORECASE)
MEASUREMENT_HEADER = re.compile(r"\b(ms|µs|us|GB/s|TFLOP/s|bytes|Kiln|torch)\b|%")
UNCHECKED_COLUMN = re.compile(r"target|quoted|peer", re.IGNORECASE)
# A number as the README prints one: "1,234", "0.2432", "99.4" (of "99.4%");
# not part of a name ("sm_90", "x86-64", "b16") or a shape ("16384x4096").
NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?![\w.]*\d)(?!x\d)")
SCALES = (1.0, 100.0, 1e3, 1e-3)
RUN_RECORDS = ("bench_run", "gpu_run", "signature_run")


def tables(lines):
    """(index of the header line, rows as lists of cells, the cited files,
    the heading above) for each markdown table."""
    found, i, cited, heading = [], 0, [], ""
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("#"):
            heading, cited = line.lstrip("#").strip(), []
        marker = MARKER.search(line)
        if marker:
            cited = [f.strip() for f in marker.group(1).split(",") if f.strip()]
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|$",
                                                                      lines[i + 1].strip()):
            start = i
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            found.append((start, cells(lines[start]), rows, cited, heading))
            cited = []
            continue
        i += 1
    return found


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def numbers(text):
    """The numbers a cell states, without code spans and link targets."""
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return NUMBER.findall(text)


def record_values(record, out):
    if isinstance(record, bool):
        return
    if isinstance(record, (int, float)):
        out.append(float(record))
    elif isinstance(record, dict):
        for v in record.values():
            record_values(v, out)
    elif isinstance(record, list):
        for v in record:
            record_values(v, out)


def read_results(path):
    """The records of a results file, and why it may not be cited ("" if it may)."""
    try:
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        return [], f"unreadable: {e}"
    if not records or records[-1].get("bench") not in RUN_RECORDS:
        return records, ("its last record is not a run record (bench_run, signature_run or "
                         "gpu_run): not written whole by tests/bench/run.sh, run_signature.sh "
                         "or tests/gpu/run.sh")
    if records[-1].get("bench") == "gpu_run" and records[-1].get("passed") is not True:
        return records, "a failed GPU run (gpu_run passed is not true): never a result"
    return records, ""


def matches(token, values):
    digits = len(token.split(".")[1]) if "." in token else 0
    want = float(token.replace(",", ""))
    for v in values:
        for scale in SCALES:
            if round(v * scale, digits) == want:
                return True
    return False


def check(readme_lines, root, name="README.md"):
    """Every problem found, as "NAME:LINE: what"."""
    problems = []
    for start, header, rows, cited, heading in tables(readme_lines):
        measured = bool(MEASUREMENT_HEADING.search(heading)) or any(
            MEASUREMENT_HEADER.search(h) for h in header)
        if not measured:
            continue
        where = f"{name}:{start + 1}"
        if not cited:
            problems.append(f"{where}: a measurement table cites no results file "
                            "(<!-- figures: tests/bench/results/FILE.jsonl --> before it)")
            continue
        values = []
        for path in cited:
            records, why = read_results(os.path.join(root, path))
            if why:
                problems.append(f"{where}: {path}: {why}")
            for r in records:
                record_values(r, values)
        checked = [c for c, h in enumerate(header) if c > 0 and not UNCHECKED_COLUMN.search(h)]
        for r, row in enumerate(rows):
            for c in checked:
                if c >= len(row):
                    continue
                for token in numbers(row[c]):
                    if not matches(token, values):
                        problems.append(f"{name}:{start + 3 + r}: '{token}' ({header[c]}, "
                                        f"row '{row[0]}') is in no record of "
                                        f"{', '.join(cited)}")
    return problems


def self_test():
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        def write(name, records):
            with open(os.path.join(root, name), "w") as f:
                for r in records:
                    f.write(json.dumps(r) + "\n")

        write("gpu.jsonl", [{"bench": "gpu_throughput", "gb_per_s": 4164.2,
                             "fraction_of_copy": 0.9941, "median_ms": 0.24321},
                            {"bench": "gpu_run", "passed": True}])
        write("failed.jsonl", [{"bench": "gpu_throughput", "gb_per_s": 4164.2},
                               {"bench": "gpu_run", "passed": False}])
        write("by_hand.jsonl", [{"bench": "load", "total_ms_median": 1.02}])
        write("cpu.jsonl", [{"bench": "load", "total_ms_median": 1.02, "stripped_bytes": 400416},
                            {"bench": "bench_run", "complete": True}])
        readme = """# Kiln
| variable | effect |
| --- | --- |
| `KILN_X` | `1`: numbers in a table of no measurement are not checked, 42 |

## Benchmarks
<!-- figures: gpu.jsonl -->
| graph | Kiln GB/s | % of copy | ms | target (quoted) |
| --- | --- | --- | --- | --- |
| gelu 16384x4096 sm_90 | 4164 | 99.4% | 0.2432 (243.2 µs) | <= 0.260 |

<!-- figures: cpu.jsonl -->
| what | figure |
| --- | --- |
| load of 10,000 sins | 1.0 ms, 400,416 bytes |

| what | figure |
| --- | --- |
| uncited | 1.0 ms |

<!-- figures: gpu.jsonl -->
| graph | Kiln GB/s |
| --- | --- |
| a typo | 4146 |

<!-- figures: failed.jsonl, by_hand.jsonl, missing.jsonl -->
| graph | Kiln GB/s |
| --- | --- |
| gelu | 4164 |
""".splitlines()
        problems = check(readme, root)
        expected = [
            "README.md:17: a measurement table cites no results file",
            "README.md:24: '4146' (Kiln GB/s, row 'a typo') is in no record of gpu.jsonl",
            "README.md:27: failed.jsonl: a failed GPU run",
            "README.md:27: by_hand.jsonl: its last record is not a run record",
            "README.md:27: missing.jsonl: unreadable",
        ]
        assert len(problems) == len(expected), "\n".join(problems)
        for got, want in zip(problems, expected):
            assert got.startswith(want), (got, want)
    assert numbers("0.43 µs (0.428-0.445 over 9 runs; `KILN_X=1`) sm_90 16384x4096 b16") == [
        "0.43", "0.428", "0.445", "9"], numbers("0.43 µs (0.428-0.445 over 9 runs)")
    print("check_readme_figures: self-test passed")
    return 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    root = "."
    if len(argv) >= 2 and argv[0] == "--root":
        root, argv = argv[1], argv[2:]
    paths = argv or [os.path.join(root, "README.md")]
    problems, cited_tables = [], 0
    for path in paths:
        with open(path) as f:
            lines = f.read().splitlines()
        problems += check(lines, root, os.path.relpath(path, root))
        cited_tables += sum(1 for t in tables(lines) if t[3])
    for p in problems:
        print(p)
    if problems:
        print(f"check_readme_figures: {len(problems)} problem(s)")
        return 1
    print(f"check_readme_figures: every figure of {cited_tables} cited table(s) in "
          f"{len(paths)} file(s) is in its results file")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
