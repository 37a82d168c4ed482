#!/usr/bin/env bash
# The full mutation campaign of issue 16, recorded: every byte of the first
# 8 KiB x 4 patterns and 5,000 random multi-byte mutants of
# tests/graph_targets/graph_targets.kiln (a real package of the tree: four
# graphs, two CPU targets), each with the checksum as written and
# recomputed, against `kiln verify` and open + call. Appends the counts to
# tests/bench/results/<date>-vm-<commit>-mutation-campaign.jsonl.
#
# usage: tests/mutation/run_campaign.sh [BUILD_DIR]   (default build/release)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:-$root/build/release}" && pwd)"
commit="$(git -C "$root" rev-parse --short HEAD)"
date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
model="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
device="cpu: ${model} x$(nproc)"
out="$root/tests/bench/results/$(date -u +%Y-%m-%d)-vm-${commit}-mutation-campaign.jsonl"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rm -f "$out"
"$build/tests/mutation/mutation_campaign" \
  --package "$build/tests/graph_targets/graph_targets.kiln" --kiln "$build/tools/kiln/kiln" \
  --work-dir "$work" --first-bytes 8192 --random 5000 --seed 1 --timeout-s 20 --jobs "$(nproc)" \
  --results "$out" --date "$date" --device "$device" --commit "$commit"
echo "wrote $out"
