#!/usr/bin/env python3
"""One JSON record for a GoogleTest binary that run.sh ran on the GPU machine.

The runtime's GPU unit tests (test_cuda_launcher, test_gemm_runtime,
test_cublaslt_unavailable) skip their GPU parts where there is no GPU, and
ctest counts a skip as a pass. On the GPU machine a test skipped for want of
a GPU, a driver or cuBLASLt means the GPU was not tested, so this counts
the tests, failures and skips in the binary's --gtest_output=json report and
fails when nothing ran or when a skip says the GPU stack was missing. The
report names the skipped tests; their messages (which this GoogleTest's JSON
leaves out) come from the binary's log, where each follows "FILE:LINE: Skipped".

Usage: gtest_record.py NAME EXIT REPORT.json LOG
Prints {"bench": NAME, "exit": EXIT, "tests": N, "failed": F, "skipped": S,
"skips": [...], "passed": bool} and exits 1 when "passed" is false.
"""

import json
import re
import sys

# Skip messages that mean the GPU stack was not there (tests/unit/test_cuda_launcher.cpp,
# test_gemm_runtime.cpp, test_cublaslt_unavailable.cpp).
GPU_MISSING = re.compile(r"no CUDA driver|no CUDA device|no GPU|cuBLASLt is not installed",
                         re.IGNORECASE)


def skip_messages(log_lines):
    """The message under each "FILE:LINE: Skipped" line, in the order they ran."""
    messages = []
    for i, line in enumerate(log_lines):
        if re.search(r":\d+: Skipped$", line.rstrip()):
            following = log_lines[i + 1].strip() if i + 1 < len(log_lines) else ""
            messages.append("" if following.startswith("[") else following)
    return messages


def summarize(name, exit_code, report, log_lines):
    tests, failed, skipped = 0, 0, []
    for suite in report.get("testsuites", []):
        for test in suite.get("testsuite", []):
            tests += 1
            if test.get("failures"):
                failed += 1
            if test.get("result") == "SKIPPED":
                skipped.append(f"{suite.get('name')}.{test.get('name')}")
    messages = skip_messages(log_lines)
    skips = [f"{test}: {messages[i] if i < len(messages) else ''}".rstrip()
             for i, test in enumerate(skipped)]
    why = []
    if exit_code != 0:
        why.append(f"exit {exit_code}")
    if tests == 0:
        why.append("no tests in the report")
    elif len(skips) == tests:
        why.append("every test skipped")
    why += [f"skipped for want of the GPU stack: {s}" for s in skips if GPU_MISSING.search(s)]
    record = {"bench": name, "exit": exit_code, "tests": tests, "failed": failed,
              "skipped": len(skips), "skips": skips, "passed": not why}
    if why:
        record["why"] = why
    return record


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    name, exit_text, path, log_path = argv
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        report = {}
        print(f"gtest_record: {name}: no readable report {path}: {e}", file=sys.stderr)
    try:
        with open(log_path, errors="replace") as f:
            log_lines = f.read().splitlines()
    except OSError:
        log_lines = []
    record = summarize(name, int(exit_text), report, log_lines)
    print(json.dumps(record))
    return 0 if record["passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
