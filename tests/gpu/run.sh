#!/usr/bin/env bash
# The GPU machine's one script: checks Kiln's CUDA kernels against the
# reference interpreter, checks that a kernel fault is reported as
# kiln::CudaError, measures Kiln and torch.compile on the benchmark rows,
# checks the output of every timed call against a float64 PyTorch reference
# (first round), and merges the figures. Under --out go seven files (the
# device machine's $OUT returns at most eight): run.log (everything),
# nvidia-smi.txt, one log per tool, and <date>-<device>-<commit>.jsonl with
# every record (checks, both benchmarks, the comparison), each carrying date,
# device and commit, and a last "gpu_run" record: "passed" true, or false
# with the reasons (a failed run draws no comparison: merge_results.py).
# Exits non-zero when a check fails or a step errors; speed never fails it.
#
# Usage: bash tests/gpu/run.sh [--build-dir DIR] [--out DIR] [--quick] [--rounds N]
#   --build-dir DIR  a build that has tests/gpu/gpu_check and gpu_bench (made on the
#                    development machine and carried over); without it, this script
#                    configures and builds tests/gpu here, in build/gpu
#   --out DIR        default: $OUT if set, else ./gpu-results
#   --quick          gpu_check skips its 16384-row cases
#   --rounds N       gpu_bench and torch_peer.py alternate N times (default 3); the
#                    comparison takes each side's median
# The commit: $KILN_COMMIT, else git's, else "unknown" (a copied tree may have no .git).
set -uo pipefail
export PYTHONUNBUFFERED=1

usage() { sed -n '11,19p' "$0" | sed 's/^# \{0,1\}//'; }

root="$(cd "$(dirname "$0")/../.." && pwd)"
build=""
out="${OUT:-$PWD/gpu-results}"
quick=()
rounds=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build="${2:?--build-dir needs a directory}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --quick) quick=(--quick); shift ;;
    --rounds)
      rounds="${2:?--rounds needs a number}"
      [[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --rounds expects a positive integer, got '$rounds'" >&2; exit 2; }
      shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec > >(tee "$out/run.log") 2>&1
# The tools' JSON lines before the merge: they all end up in the merged file.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failures=()
fail() { failures+=("$1"); echo "run.sh: FAILED: $1"; }
section() { printf '\n== %s\n' "$1"; }

# --- the binaries ---------------------------------------------------------------
if [[ -n "$build" ]]; then
  if ! build="$(cd "$build" 2>/dev/null && pwd)"; then
    echo "run.sh: no build directory '$build'" >&2
    exit 1
  fi
else
  build="$root/build/gpu"
  section "building tests/gpu in $build"
  if ! { cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
           -DKILN_BUILD_GPU_TESTS=ON &&
         cmake --build "$build" --target gpu_check gpu_bench gpu_jit gpu_diff gpu_gemm \
           test_cuda_launcher test_gemm_runtime test_cublaslt_unavailable; }; then
    cat >&2 <<EOF

run.sh: building tests/gpu on this machine failed (the log is above, and in run.log).
The GPU machine's image may lack clang++ and the Debian -dev packages Kiln's build
needs (flatbuffers, zstd, xxhash, dlpack). Build on the development machine instead
and carry the two binaries over (tests/gpu/README.md says how), then run:
  bash tests/gpu/run.sh --build-dir <that build directory>
EOF
    exit 1
  fi
fi
bin="$build/tests/gpu"
for tool in gpu_check gpu_bench; do
  if [[ ! -x "$bin/$tool" ]]; then
    echo "run.sh: $bin/$tool is missing (build the gpu_check and gpu_bench targets)" >&2
    exit 1
  fi
done

commit="${KILN_COMMIT:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
date_utc="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# --- the machine ----------------------------------------------------------------
section "nvidia-smi"
device="unknown"
if nvidia-smi >"$out/nvidia-smi.txt" 2>&1; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm,power.limit \
    --format=csv | tee -a "$out/nvidia-smi.txt"
  device="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
else
  cat "$out/nvidia-smi.txt"
  fail "nvidia-smi (is there a GPU and a driver?)"
fi
slug="$(printf '%s' "$device" | tr '[:upper:]' '[:lower:]' |
  sed 's/[^a-z0-9]\{1,\}/-/g; s/^-//; s/-$//')"
merged="$out/$(date -u +%Y-%m-%d)-${slug:-unknown}-${commit}.jsonl"

# A step's exit status, with its output both shown and kept.
run_logged() {  # log-file command...
  local log="$1"
  shift
  "$@" 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}

# --- checks ---------------------------------------------------------------------
section "gpu_check: every graph against the interpreter, aligned and misaligned"
run_logged "$out/gpu_check.log" "$bin/gpu_check" "${quick[@]}"
check_rc=$?
[[ $check_rc -eq 0 ]] || fail "gpu_check (exit $check_rc)"
summary="$(grep -m1 '^gpu_check: [0-9]* passed' "$out/gpu_check.log" || true)"
passed="$(sed -n 's/^gpu_check: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' <<<"$summary")"
failed="$(sed -n 's/^gpu_check: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' <<<"$summary")"
printf '{"bench":"gpu_check","passed":%s,"failed":%s,"exit":%d}\n' \
  "${passed:-null}" "${failed:-null}" "$check_rc" >"$work/checks.jsonl"

section "gpu_check --fault: a bogus device pointer must come back as kiln::CudaError"
run_logged "$out/gpu_check_fault.log" "$bin/gpu_check" --fault
fault_rc=$?
[[ $fault_rc -eq 0 ]] || fail "gpu_check --fault (exit $fault_rc)"
printf '{"bench":"gpu_check_fault","cuda_error_reported":%s,"exit":%d}\n' \
  "$([[ $fault_rc -eq 0 ]] && echo true || echo false)" "$fault_rc" >>"$work/checks.jsonl"

# A GoogleTest binary of the runtime's GPU unit tests (they skip their GPU
# parts where there is no GPU, so CI cannot run them): its record says how
# many ran, failed and skipped, and a test skipped for want of a GPU, a
# driver or cuBLASLt fails the step (gtest_record.py). The log goes to
# run.log only (the device machine returns at most eight files).
run_unit_tests() {  # name
  local name="$1" unit_rc
  "$build/tests/unit/$name" --gtest_brief=1 --gtest_output="json:$work/$name.json" 2>&1 |
    tee "$work/$name.log"
  unit_rc=${PIPESTATUS[0]}
  python3 "$root/tests/gpu/gtest_record.py" "$name" "$unit_rc" "$work/$name.json" \
    "$work/$name.log" >>"$work/checks.jsonl" ||
    fail "$name (exit $unit_rc; $(tail -n 1 "$work/checks.jsonl" | grep -o '"why": \[[^]]*\]'))"
}

# The launcher on real cubins and PTX, contexts, shared memory opt-in,
# refused launches.
if [[ -x "$build/tests/unit/test_cuda_launcher" ]]; then
  section "test_cuda_launcher: the CUDA launcher on this GPU"
  run_unit_tests test_cuda_launcher
else
  fail "no $build/tests/unit/test_cuda_launcher in the build (build the test_cuda_launcher target)"
fi

# Gemm library calls through cuBLASLt (every dtype pairing, transposes,
# batches with a shared operand, odd sizes, k = 0, every epilogue, aligned and
# not) against the host reference; its JSON lines go into the merged file.
# Then the runtime's gemm unit tests with their GPU parts: the algorithm
# cache on this device (test_gemm_runtime) and the missing-library error
# (test_cublaslt_unavailable, KILN_LIBCUBLASLT pointing at no library).
if [[ -x "$bin/gpu_gemm" ]]; then
  section "gpu_gemm: gemm library calls (cuBLASLt) against the host reference"
  run_logged "$work/gpu_gemm.log" "$bin/gpu_gemm"
  gemm_rc=$?
  [[ $gemm_rc -eq 0 ]] || fail "gpu_gemm (exit $gemm_rc)"
  grep '^{' "$work/gpu_gemm.log" >"$work/gpu_gemm.jsonl" || true
  gemm_summary="$(grep -m1 '^gpu_gemm: [0-9]* passed' "$work/gpu_gemm.log" || true)"
  printf '{"bench":"gpu_gemm_summary","passed":%s,"failed":%s,"exit":%d}\n' \
    "$(sed -n 's/^gpu_gemm: \([0-9]*\) passed.*/\1/p' <<<"$gemm_summary" | grep . || echo null)" \
    "$(sed -n 's/^gpu_gemm: [0-9]* passed, \([0-9]*\) failed$/\1/p' <<<"$gemm_summary" | grep . || echo null)" \
    "$gemm_rc" >>"$work/checks.jsonl"
else
  fail "no $bin/gpu_gemm in the build (build the gpu_gemm target to run it)"
fi
: >>"$work/gpu_gemm.jsonl"
for unit in test_gemm_runtime test_cublaslt_unavailable; do
  if [[ ! -x "$build/tests/unit/$unit" ]]; then
    fail "no $build/tests/unit/$unit in the build (build the $unit target)"
    continue
  fi
  section "$unit: the runtime's gemm unit tests, GPU parts included"
  run_unit_tests "$unit"
done

# The CUDA fallback JIT: every graph from an IR-only package through NVRTC,
# checked (interpreter, disk cache, export + merge) and timed. Its log goes
# to run.log only; its JSON lines (checks and "jit_cuda" timings) into the
# merged file.
if [[ -x "$bin/gpu_jit" ]]; then
  section "gpu_jit: the CUDA fallback JIT (NVRTC) on every graph"
  run_logged "$work/gpu_jit.log" "$bin/gpu_jit" --runs 5 --dir "$work/gpu_jit"
  jit_rc=$?
  [[ $jit_rc -eq 0 ]] || fail "gpu_jit (exit $jit_rc)"
  grep '^{' "$work/gpu_jit.log" >"$work/gpu_jit.jsonl" || true
else
  fail "no $bin/gpu_jit in the build (build the gpu_jit target to run it)"
fi
: >>"$work/gpu_jit.jsonl"

# The differential tests (docs/testing.md): test_differential's random graphs
# on this GPU. The package comes from `gpu_diff --build-only --work
# <build>/tests/gpu/gpu_diff_work` on a machine with nvcc when it is there,
# else gpu_diff builds it here. Its log goes to run.log only.
if [[ -x "$bin/gpu_diff" ]]; then
  section "gpu_diff: random graphs against the interpreter"
  diff_package="$bin/gpu_diff_work/out/gpu_diff.kiln"
  if [[ -f "$diff_package" ]]; then
    run_logged "$work/gpu_diff.log" "$bin/gpu_diff" --package "$diff_package"
  else
    run_logged "$work/gpu_diff.log" "$bin/gpu_diff" --work "$work/gpu_diff"
  fi
  diff_rc=$?
  [[ $diff_rc -eq 0 ]] || fail "gpu_diff (exit $diff_rc)"
  printf '{"bench":"gpu_diff","exit":%d}\n' "$diff_rc" >>"$work/checks.jsonl"
else
  fail "no $bin/gpu_diff in the build (build the gpu_diff target to run it)"
fi

# The model examples (examples/mlp, examples/attention) on the GPU, each
# checked against the interpreter at its own small size.
for example in examples/mlp/mlp_example examples/attention/attention_example; do
  if [[ -x "$build/$example" ]]; then
    section "$(basename "$example"): checked against the interpreter on the GPU"
    "$build/$example"
    example_rc=$?
    [[ $example_rc -eq 0 ]] || fail "$(basename "$example") (exit $example_rc)"
    printf '{"bench":"%s","exit":%d}\n' "$(basename "$example")" "$example_rc" >>"$work/checks.jsonl"
  else
    fail "no $build/$example in the build (build it to check it here)"
  fi
done

# --- benchmarks -----------------------------------------------------------------
# The two tools alternate, $rounds times each, each round a fresh process:
# torch.compile's figures move from one process to the next by more than the
# gaps being measured, so the comparison takes each side's median. In the
# first round Kiln's tools dump what their last timed call read and wrote
# (--dump), and the torch scripts check it against a float64 reference
# (--check, output_check.py): every timed specialization is checked in the
# run that times it, and a row whose check fails is not compared.
: >"$out/gpu_bench.log"
: >"$out/torch_peer.log"
for ((round = 1; round <= rounds; ++round)); do
  bench_dump=() peer_check=() models_dump=() models_check=()
  if [[ $round -eq 1 ]]; then
    bench_dump=(--dump "$work/dump_bench") peer_check=(--check "$work/dump_bench")
    models_dump=(--dump "$work/dump_models") models_check=(--check "$work/dump_models")
  fi
  section "gpu_bench: Kiln at 16384x4096 (round $round of $rounds)"
  run_logged "$work/gpu_bench.round" "$bin/gpu_bench" "${bench_dump[@]}"
  bench_rc=$?
  cat "$work/gpu_bench.round" >>"$out/gpu_bench.log"
  [[ $bench_rc -eq 0 ]] || fail "gpu_bench errored in round $round (exit $bench_rc)"

  section "torch_peer.py: torch.compile at 16384x4096 (round $round of $rounds)"
  run_logged "$work/torch_peer.round" python3 "$root/tests/gpu/torch_peer.py" "${peer_check[@]}"
  torch_rc=$?
  cat "$work/torch_peer.round" >>"$out/torch_peer.log"
  [[ $torch_rc -eq 0 ]] ||
    fail "torch_peer.py failed in round $round (exit $torch_rc: an error, or an output check)"
  rm -rf "$work/dump_bench"  # 2.3 GB of tensors

  if [[ -x "$bin/gpu_models" ]]; then
    section "gpu_models: the MLP and attention examples at ANCHORS sizes (round $round of $rounds)"
    run_logged "$work/gpu_models.round" "$bin/gpu_models" "${models_dump[@]}"
    models_rc=$?
    cat "$work/gpu_models.round" >>"$work/gpu_models.log"
    [[ $models_rc -eq 0 ]] || fail "gpu_models errored in round $round (exit $models_rc)"
    section "torch_models.py: torch.compile on the same models (round $round of $rounds)"
    run_logged "$work/torch_models.round" python3 "$root/tests/gpu/torch_models.py" \
      "${models_check[@]}"
    torch_models_rc=$?
    cat "$work/torch_models.round" >>"$work/torch_models.log"
    [[ $torch_models_rc -eq 0 ]] ||
      fail "torch_models.py failed in round $round (exit $torch_models_rc: an error, or an output check)"
    rm -rf "$work/dump_models"
  else
    fail "no $bin/gpu_models in the build (build the gpu_models target)"
  fi
done
grep -h '^{' "$work/gpu_models.log" "$work/torch_models.log" >"$work/models.jsonl" 2>/dev/null || true
grep '^{' "$out/gpu_bench.log" >"$work/gpu_bench.jsonl" || true
grep '^{' "$out/torch_peer.log" >"$work/torch_peer.jsonl" || true

section "Kiln against torch.compile"
merge_args=(--commit "$commit" --date "$date_utc" --out "$merged")
[[ "$device" == unknown ]] || merge_args+=(--device "$device")
for failure in "${failures[@]}"; do merge_args+=(--failed-step "$failure"); done
# The merge writes the run's verdict ("gpu_run", "passed") into the file; it
# exits 1 for a failed run, which the steps above already counted.
python3 "$root/tests/gpu/merge_results.py" "${merge_args[@]}" \
  "$work/checks.jsonl" "$work/gpu_gemm.jsonl" "$work/gpu_jit.jsonl" "$work/gpu_bench.jsonl" \
  "$work/torch_peer.jsonl" "$work/models.jsonl"
merge_rc=$?
if [[ $merge_rc -ne 0 && ${#failures[@]} -eq 0 ]]; then
  fail "merge_results.py (exit $merge_rc: a record reports a failed check)"
fi

section "summary"
echo "results: $out"
echo "merged:  $merged"
if [[ ${#failures[@]} -gt 0 ]]; then
  printf 'run.sh: "passed": false: %d step(s) failed; not a result:\n' "${#failures[@]}"
  printf '  %s\n' "${failures[@]}"
  exit 1
fi
echo 'run.sh: "passed": true: all checks passed'
