#!/usr/bin/env python3
"""torch.compile on the model examples, timed the way gpu_models times Kiln.

examples/mlp (8192x1024 -> 4096 -> 1024: linear, gelu, linear, residual,
layernorm) and examples/attention (single head, causal, d 128, at b16 n2048
and b1 n8192), all bf16, the same math line by line as the Kiln graphs,
compiled with torch.compile in its default mode. Warmed up until compiled,
then 7 repeats of 20 back-to-back calls timed with CUDA events: the median
per call. Prints JSON lines (bench "torch_model") and a table.

With --check DIR (what `gpu_models --dump DIR` wrote), each model also runs on
the inputs of Kiln's timed call, and Kiln's output, torch.compile's and eager
PyTorch's are compared with a float64 reference computed from the same inputs
(output_check.py): one "output_check" record per model, and the exit status
is 1 when a check fails.

Usage: python3 tests/gpu/torch_models.py [--device N] [--check DIR]
"""

import argparse
import json
import math
import sys

import torch

import output_check
from torch_peer import REPEATS, median_ms_per_call  # the same timing as the throughput rows

CALLS_PER_REPEAT, WARMUP_CALLS = 20, 5
LAYERNORM_EPS = 1e-5  # kiln::layernorm's default


# The graphs of examples/mlp and examples/attention: bf16 where the graph is
# bf16, `acc` (f32) where it casts. The output check calls them on float64
# inputs with acc=torch.float64: the same math without rounding.
def mlp(x, w1, b1, w2, b2, gamma, beta, acc=torch.float32):
    h = torch.nn.functional.gelu(x @ w1 + b1)
    y = (h @ w2 + b2 + x).to(acc)
    d = y - y.mean(-1, keepdim=True)
    var = (d * d).mean(-1, keepdim=True)
    return (d * torch.rsqrt(var + LAYERNORM_EPS) * gamma.to(acc) + beta.to(acc)).to(x.dtype)


def attention(q, k, v, acc=torch.float32):
    n = q.shape[-2]
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    row = torch.arange(n, device=q.device)
    s = torch.where(row[:, None] >= row[None, :], s, float("-inf")).to(acc)
    e = torch.exp(s - s.amax(-1, keepdim=True))
    return (e / e.sum(-1, keepdim=True)).to(q.dtype) @ v


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", type=int, default=0)
    parser.add_argument("--check", metavar="DIR",
                        help="check the outputs `gpu_models --dump DIR` wrote (output_check.py)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("torch_models: torch sees no CUDA device", file=sys.stderr)
        return 1
    dumped = output_check.read_manifest(args.check) if args.check else None
    checks = []
    device = torch.device("cuda", args.device)
    torch.cuda.set_device(device)
    meta = {"device": torch.cuda.get_device_name(device), "cuda": torch.version.cuda,
            "torch": torch.__version__, "mode": "default"}
    gen = torch.Generator(device=device).manual_seed(2026)

    def uniform(*shape, scale=1.0):
        return torch.empty(shape, device=device).uniform_(-scale, scale,
                                                          generator=gen).to(torch.bfloat16)

    models = [
        ("mlp", mlp, lambda: [uniform(8192, 1024), uniform(1024, 4096, scale=1 / 32),
                              uniform(4096, scale=1 / 32), uniform(4096, 1024, scale=1 / 64),
                              uniform(1024, scale=1 / 64), uniform(1024), uniform(1024)],
         2.0 * 8192 * 1024 * 4096 * 2),
        ("attention_b16_n2048", attention, lambda: [uniform(16, 2048, 128) for _ in range(3)],
         2.0 * 16 * 2048 * 2048 * 128 * 2),
        ("attention_b1_n8192", attention, lambda: [uniform(1, 8192, 128) for _ in range(3)],
         2.0 * 8192 * 8192 * 128 * 2),
    ]
    stream = torch.cuda.Stream(device)
    status = 0
    rows = []
    with torch.cuda.stream(stream):
        for name, fn, make_args, flops in models:
            row = {"bench": "torch_model", "model": name}
            try:
                torch._dynamo.reset()
                compiled = torch.compile(fn)
                fn_args = make_args()
                call = lambda: compiled(*fn_args)  # noqa: E731
                for _ in range(WARMUP_CALLS):
                    call()
                stream.synchronize()
                ms = median_ms_per_call(call, stream, CALLS_PER_REPEAT)
                row.update(median_ms=round(ms, 4), tflop_per_s=round(flops / (ms * 1e-3) / 1e12, 1),
                           repeats=REPEATS, calls_per_repeat=CALLS_PER_REPEAT)
            except Exception as e:  # one failing row must not hide the others
                row["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
                status = 1
            row.update(meta)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if dumped is not None:
                check = output_check.check_dumped(dumped, args.check, ("model", name), fn,
                                                  compiled if "error" not in row else None, device)
                check.update(meta)
                checks.append(check)
                print(json.dumps(check), flush=True)
                if not check["passed"]:
                    status = 1
    print(f"\n{meta['device']}, torch {meta['torch']}; median of {REPEATS} x {CALLS_PER_REPEAT} calls")
    print(f"{'model':<22} {'ms/call':>10} {'TFLOP/s':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<22} error: {r['error']}")
        else:
            print(f"{r['model']:<22} {r['median_ms']:>10.4f} {r['tflop_per_s']:>10.1f}")
    if dumped is not None:
        output_check.print_table(checks, "gpu_models --dump")
    return status


if __name__ == "__main__":
    sys.exit(main())
