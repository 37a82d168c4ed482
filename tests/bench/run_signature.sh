#!/usr/bin/env bash
# What signature verification adds to opening the 10,000-sin package
# (target: at most 1 ms; issue 16): signs a copy of bench_sin.kiln with a
# fresh key and runs bench_signature, recording the results in
# tests/bench/results/<date>-<host>-<commit>-signature.jsonl.
# Usage: tests/bench/run_signature.sh [build-dir] [reps]   (default: build/release, 200)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build/release}"
reps="${2:-200}"
cmake --build "$build" --target bench_signature bench_sin_kernels kiln

source "$root/tests/bench/results_file.sh"
results_file_open signature

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
kiln="$build/tools/kiln/kiln"
"$kiln" keygen --out "$work/bench" --comment "bench_signature, discarded" >/dev/null
"$kiln" sign "$build/tests/bench/bench_sin.kiln" --key "$work/bench.key" \
  --out "$work/bench_sin.kiln" >/dev/null
# The signed copy keeps the package's name (bench_sin) for the record.
echo "== signature check at open: the 10,000-sin package, unsigned and signed"
"$build/tests/bench/bench_signature" --reps "$reps" "$build/tests/bench/bench_sin.kiln" \
  "$work/bench_sin.kiln" "$work/bench.pub" | record

# The last record says the script wrote the file whole.
printf '{"bench":"signature_run","complete":true}\n' | record >/dev/null
echo
echo "results: $out"
