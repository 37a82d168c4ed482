#!/usr/bin/env bash
# Fails when ptxas reported register spills for any kernel of a package: reads
# the <kernel>.ptxas reports the generator keeps beside each cubin.
# Usage: check_no_spills.sh GENERATOR_WORK_DIR
set -euo pipefail
dir="${1:?usage: check_no_spills.sh GENERATOR_WORK_DIR}"
shopt -s nullglob
reports=("$dir"/cuda-*/*.ptxas)
if [[ ${#reports[@]} -eq 0 ]]; then
  echo "check_no_spills: no ptxas reports under $dir (was the package built for CUDA?)" >&2
  exit 1
fi
spilled=0
for r in "${reports[@]}"; do
  if ! grep -q "bytes spill stores" "$r"; then
    echo "check_no_spills: $r has no spill line (not a ptxas -v report?)" >&2
    exit 1
  fi
  if grep -Eq "[1-9][0-9]* bytes spill (stores|loads)" "$r"; then
    echo "SPILL: ${r%.ptxas}.cu"
    grep -E "Function properties|spill|Used" "$r" | sed 's/^/  /'
    spilled=$((spilled + 1))
  fi
done
if [[ $spilled -gt 0 ]]; then
  echo "check_no_spills: $spilled of ${#reports[@]} kernels spill registers" >&2
  exit 1
fi
echo "check_no_spills: ${#reports[@]} kernels, no spills"
