#!/usr/bin/env bash
# Runs Kiln's CPU benchmarks against a release build and records the results
# in tests/bench/results/<date>-<host>-<commit>.jsonl (JSON lines, each with
# date, device and commit), printing a table for each.
# Usage: tests/bench/run.sh [build-dir]   (default: build/release)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build/release}"
cmake --build "$build" --target bench_load bench_throughput bench_dispatch kiln_runtime_size_probe \
  bench_sin_kernels bench_many_graphs bench_nvrtc bench_jit

source "$root/tests/bench/results_file.sh"
results_file_open

echo "== packages of 1, 100 and 10,000 small graphs (one kernel each, cpu:x86-64)"
echo "   built once under $build/tests/bench/many_graphs; 10,000 take minutes when cold"
many="$build/tests/bench/many_graphs"
for count in 1 100 10000; do
  "$build/tests/bench/bench_many_graphs" "$count" "$many/$count" "$(command -v clang++)" \
    "$(command -v ninja)" | record
done

echo
echo "== load: open + verify + first call"
"$build/tests/bench/bench_load" --reps 30 "$build/tests/bench/bench_sin.kiln" \
  "$many/1/graphs_1.kiln" "$many/100/graphs_100.kiln" "$many/10000/graphs_10000.kiln" | record

echo
echo "== cold build of the 10,000-sin graph (generator, fresh work dir, both CPU targets)"
gen="$build/tests/bench/bench_sin_kernels.generator"
cold_dir="$(mktemp -d)"
t0=$(date +%s.%N)
"$gen" --name cold_sin --targets cpu:x86-64,cpu:x86-64-v3 --out-dir "$cold_dir" \
  --cxx "$(command -v clang++)" --ninja "$(command -v ninja)" >/dev/null
t1=$(date +%s.%N)
cold_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
rm -rf "$cold_dir"
printf '{"bench":"cold_build","graph":"sin_chain","ops":10000,"targets":2,"seconds":%.2f,"target_seconds":30}\n' \
  "$cold_s" | record
printf '%-34s %10.2f s (target <= 30 s)\n' "cold build, 2 targets" "$cold_s"

echo
echo "== dispatch: 100 inputs, 10 static specializations cycled"
"$build/tests/bench/bench_dispatch" | record

echo
echo "== CPU throughput, 16384x4096 f32"
"$build/tests/bench/bench_throughput" | record

echo
echo "== CPU JIT over the quickstart's graphs: compile, disk-cache hit, jit hit; export + kiln merge"
"$build/tests/bench/bench_jit" | record

echo
echo "== NVRTC compile of the quickstart's graphs for sm_90 (the CUDA JIT's compile side; CPU only)"
"$build/tests/bench/bench_nvrtc" | record

echo
echo "== stripped runtime size (no JIT)"
probe="$(find "$build/tests/bench" -name 'libkiln_runtime_size_probe.so' | head -1)"
stripped="$(mktemp)"
strip -o "$stripped" "$probe"
size=$(stat -c %s "$stripped")
rm -f "$stripped"
budget="$(sed -n 's/^KILN_RUNTIME_SIZE_BUDGET:STRING=//p' "$build/CMakeCache.txt")"
printf '{"bench":"runtime_size","stripped_bytes":%d,"target_bytes":%d}\n' "$size" "$budget" | record
printf '%-34s %10d bytes (target <= %d)\n' "libkiln_runtime (stripped .so)" "$size" "$budget"

# The last record says the script wrote the file whole (tests/bench/check_readme_figures.py
# cites no file without it).
printf '{"bench":"bench_run","complete":true}\n' | record >/dev/null

echo
echo "results: $out"
