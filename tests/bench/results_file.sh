# Sourced by tests/bench/run.sh and run_signature.sh: the results file of
# one run and how its lines are written (tests/bench/results/README.md).
# Needs $root (the repository); `results_file_open [SUFFIX]` creates
# tests/bench/results/<date>-<host>-<commit>[-SUFFIX].jsonl as $out; then
# `... | record` prefixes every JSON line of stdin with date, device and
# commit, appends it to $out and echoes every line.
results_file_open() {
  date_utc="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  cpu="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  device="cpu: ${cpu} x$(nproc)"
  out_dir="$root/tests/bench/results"
  mkdir -p "$out_dir"
  out="$out_dir/$(date -u +%Y-%m-%d)-$(hostname -s)-${commit}${1:+-$1}.jsonl"
  : >"$out"
}

meta() { printf '"date":"%s","device":"%s","commit":"%s"' "$date_utc" "$device" "$commit"; }

record() {
  while IFS= read -r line; do
    if [[ "$line" == \{* ]]; then
      printf '{%s,%s\n' "$(meta)" "${line#\{}" >>"$out"
    fi
    printf '%s\n' "$line"
  done
}
