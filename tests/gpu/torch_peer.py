#!/usr/bin/env python3
"""torch.compile on the GPU benchmark rows, timed the way gpu_bench times Kiln.

The eight functions of tests/gpu/graphs.cpp at 16384x4096 (gelu(x*a+b),
softmax, layernorm, rmsnorm; f32, and bf16 in and out with f32 inside), the
same math line by line, compiled with torch.compile in its default mode. Each
is warmed up until compiled, then timed with CUDA events: 7 repeats of 50
back-to-back calls, the median per call. Like gpu_bench, the calls alternate
between two x tensors, so that each reads x from memory rather than from
what the previous call left in L2. The copy ceiling is y.copy_(x) of the
f32 tensor, counting bytes read + written, as gpu_bench counts its
cudaMemcpyAsync. Prints JSON lines (bench "torch_copy" and
"torch_compile_throughput") and a table. Needs only torch (and the Triton it
brings) and numpy.

With --check DIR (what `gpu_bench --dump DIR` wrote), each function is also
run on the inputs of Kiln's last timed call, and Kiln's output, torch.compile's
and eager PyTorch's are compared with a float64 reference computed from the
same inputs (output_check.py): one "output_check" record per row, and the
exit status is 1 when a check fails.

Usage: python3 tests/gpu/torch_peer.py [--device N] [--check DIR]
"""

import argparse
import itertools
import json
import statistics
import subprocess
import sys

import torch

import output_check

ROWS, COLS = 16384, 4096
REPEATS, CALLS_PER_REPEAT = 7, 50
WARMUP_CALLS = 5

# kiln::layernorm's and kiln::rmsnorm's default eps (kiln/graph.h), which the
# graphs use; rmsnorm_bf16 spells its 1e-6 out.
LAYERNORM_EPS = 1e-5
RMSNORM_EPS = 1e-6


# Each function is the Kiln graph of the same name: for f32 the casts are
# no-ops; for bf16 they are the graph's casts to f32 (`acc`) and back. The
# output check calls them on float64 inputs with acc=torch.float64: the same
# math without rounding.
def gelu_affine(x, a, b, acc=torch.float32):
    return torch.nn.functional.gelu(x.to(acc) * a.to(acc) + b.to(acc)).to(x.dtype)


def softmax(x, acc=torch.float32):
    xf = x.to(acc)
    e = torch.exp(xf - xf.amax(-1, keepdim=True))
    return (e / e.sum(-1, keepdim=True)).to(x.dtype)


def layernorm(x, w, b, acc=torch.float32):
    xf = x.to(acc)
    d = xf - xf.mean(-1, keepdim=True)
    var = (d * d).mean(-1, keepdim=True)
    y = d * torch.rsqrt(var + LAYERNORM_EPS)
    return (y * w.to(acc) + b.to(acc)).to(x.dtype)


def rmsnorm(x, w, acc=torch.float32):
    xf = x.to(acc)
    r = torch.rsqrt((xf * xf).mean(-1, keepdim=True) + RMSNORM_EPS)
    return (xf * r).to(x.dtype) * w  # the weight applied in the input dtype, as Kiln's


FUNCTIONS = [
    ("gelu_affine", gelu_affine, ("x", "a", "b")),
    ("softmax", softmax, ("x",)),
    ("layernorm", layernorm, ("x", "a", "b")),
    ("rmsnorm", rmsnorm, ("x", "a")),
]

# Absolute error bounds Kiln documents by design, by (graph, dtype): the f32
# gelu is a rational erf with no exp, within 2e-6 absolute of the exact gelu
# when evaluated in f32 (docs/codegen.md; test_codegen_cpu's GeluDenseSweep
# asserts it), where PyTorch's erff is within 2 ulp. The output check admits
# that bound and no more.
DOCUMENTED_ABS_ERROR = {("gelu_affine", "f32"): 2e-6}


def median_ms_per_call(fn, stream, calls=CALLS_PER_REPEAT):
    """Events around `calls` back-to-back calls, REPEATS times."""
    per_call = []
    for _ in range(REPEATS):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record(stream)
        for _ in range(calls):
            fn()
        stop.record(stream)
        stop.synchronize()
        per_call.append(start.elapsed_time(stop) / calls)
    return statistics.median(per_call)


def nvidia_driver_version():
    # The driver's own version (nvidia-smi's), not the CUDA version it
    # supports; /proc shows it except under gVisor, where nvidia-smi does.
    # "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build ..."
    try:
        with open("/proc/driver/nvidia/version") as f:
            words = f.readline().split("Kernel Module")[1].split()
        return next(w for w in words if w[0].isdigit() and "." in w)
    except (OSError, IndexError, StopIteration):
        pass
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        return smi.stdout.splitlines()[0].strip() or "unknown"
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def triton_version():
    try:
        import triton

        return triton.__version__
    except Exception:  # torch runs without Triton only on CPU; say so rather than fail
        return "unavailable"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", type=int, default=0)
    parser.add_argument("--check", metavar="DIR",
                        help="check the outputs `gpu_bench --dump DIR` wrote (output_check.py)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("torch_peer: torch sees no CUDA device", file=sys.stderr)
        return 1
    dumped = output_check.read_manifest(args.check) if args.check else None
    checks = []

    device = torch.device("cuda", args.device)
    torch.cuda.set_device(device)
    meta = {
        "device": torch.cuda.get_device_name(device),
        "driver": nvidia_driver_version(),
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "triton": triton_version(),
        "mode": "default",
    }
    stream = torch.cuda.Stream(device)
    gen = torch.Generator(device=device).manual_seed(2026)

    def uniform(*shape, dtype):
        return torch.empty(shape, device=device).uniform_(-2, 2, generator=gen).to(dtype)

    status = 0
    results = []
    with torch.cuda.stream(stream):
        x32 = [uniform(ROWS, COLS, dtype=torch.float32) for _ in range(2)]
        y32 = torch.empty_like(x32[0])
        n_bytes = 2 * y32.numel() * y32.element_size()
        copies = itertools.count()
        copy = lambda: y32.copy_(x32[next(copies) % 2])  # noqa: E731
        copy()
        stream.synchronize()
        copy_ms = median_ms_per_call(copy, stream)
        copy_gbs = n_bytes / (copy_ms * 1e-3) / 1e9
        print(json.dumps({"bench": "torch_copy", "bytes": n_bytes,
                          "median_ms": round(copy_ms, 4), "gb_per_s": round(copy_gbs, 1),
                          **meta}), flush=True)
        del y32, x32

        for dtype_name, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
            tensors = {"x": uniform(ROWS, COLS, dtype=dtype), "a": uniform(COLS, dtype=dtype),
                       "b": uniform(COLS, dtype=dtype),
                       "x_other": uniform(ROWS, COLS, dtype=dtype)}
            for name, fn, arg_names in FUNCTIONS:
                row = {"bench": "torch_compile_throughput", "graph": name, "dtype": dtype_name,
                       "shape": [ROWS, COLS]}
                try:
                    torch._dynamo.reset()  # each function compiles alone, as a user's would
                    compiled = torch.compile(fn)
                    fn_args = [[tensors[a] for a in arg_names],
                               [tensors["x_other" if a == "x" else a] for a in arg_names]]
                    calls = itertools.count()
                    call = lambda: compiled(*fn_args[next(calls) % 2])  # noqa: E731
                    # The first call compiles; the next ones must not recompile.
                    for _ in range(WARMUP_CALLS):
                        call()
                    stream.synchronize()
                    ms = median_ms_per_call(call, stream)
                    gbs = 2 * tensors["x"].numel() * tensors["x"].element_size() / (ms * 1e-3) / 1e9
                    row.update(median_ms=round(ms, 4), gb_per_s=round(gbs, 1),
                               copy_gb_per_s=round(copy_gbs, 1),
                               fraction_of_copy=round(gbs / copy_gbs, 4), repeats=REPEATS,
                               calls_per_repeat=CALLS_PER_REPEAT)
                except Exception as e:  # one failing row must not hide the others
                    row["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
                    status = 1
                row.update(meta)
                results.append(row)
                print(json.dumps(row), flush=True)
                if dumped is not None:
                    check = output_check.check_dumped(
                        dumped, args.check, ("throughput", name, dtype_name), fn,
                        compiled if "error" not in row else None, device,
                        DOCUMENTED_ABS_ERROR.get((name, dtype_name), 0.0))
                    check.update(meta)
                    checks.append(check)
                    print(json.dumps(check), flush=True)
                    if not check["passed"]:
                        status = 1

    print(f"\n{meta['device']}, driver {meta['driver']}, torch {meta['torch']}, "
          f"triton {meta['triton']}; {ROWS}x{COLS}, median of {REPEATS} x {CALLS_PER_REPEAT} calls")
    print(f"{'graph':<12} {'dtype':<5} {'ms/call':>10} {'GB/s':>10} {'% of copy':>10}")
    print(f"{'copy':<12} {'f32':<5} {copy_ms:>10.4f} {copy_gbs:>10.1f} {100.0:>9.1f}%")
    for r in results:
        if "error" in r:
            print(f"{r['graph']:<12} {r['dtype']:<5} error: {r['error']}")
        else:
            print(f"{r['graph']:<12} {r['dtype']:<5} {r['median_ms']:>10.4f} "
                  f"{r['gb_per_s']:>10.1f} {100 * r['fraction_of_copy']:>9.1f}%")
    if dumped is not None:
        output_check.print_table(checks, "gpu_bench --dump")
    return status


if __name__ == "__main__":
    sys.exit(main())
