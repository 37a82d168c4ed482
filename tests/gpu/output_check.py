"""Checks what Kiln's benchmarks timed against a float64 reference PyTorch
computes on the device from the same inputs.

gpu_bench --dump DIR and gpu_models --dump DIR write, per benchmark row, the
inputs of the last timed call and its output (tests/gpu/output_dump.h:
.npy files, bf16 as its bits, and DIR/manifest.jsonl). The peer scripts
(torch_peer.py, torch_models.py) call check_row() with the row's function:

- the reference is the function on float64 copies of the inputs, every cast
  of the graph to f32 made to float64 instead (`acc`) and no rounding to the
  16-bit dtype: the math without rounding error;
- PyTorch eager runs the function on the inputs as they are (the graph's
  dtypes, rounding where the graph rounds), and torch.compile's function
  too: both outside references, and eager's error says how far the graph's
  own roundings put any faithful implementation from the exact math;
- the error of each is max |y - ref| / (|ref| + rms(ref)): relative where
  |ref| is large, scaled by the tensor's RMS near zero, so a wrong small
  value (a softmax tail) counts as well as a wrong large one.

Kiln's output passes when its error is at most TOLERANCE_FACTOR times
eager's, and never needs to be better than one unit in the last place of
its dtype (FLOOR): as accurate as PyTorch on the same math. Where Kiln
documents a looser accuracy for a function by design (the f32 gelu's
rational erf is within 2e-6 absolute, docs/codegen.md), the caller passes
that absolute bound and the tolerance admits it, and no more. A dropped bias,
a wrong eps, a reduction in the wrong precision or a wrong row are errors
orders of magnitude beyond that. torch.compile's output is held to the same
bound; a row where either fails is printed as failed and merge_results.py
leaves it out of the comparison.
"""

import json
import math
import os

import numpy as np
import torch

TOLERANCE_FACTOR = 4.0
# One ulp at 1.0 of the output dtype: the error metric is relative, and a
# correctly rounded result is within half of it.
FLOOR = {"f32": 2.0 ** -23, "f64": 2.0 ** -52, "f16": 2.0 ** -10, "bf16": 2.0 ** -7}
METRIC = "max |y - ref| / (|ref| + rms(ref))"

TORCH_DTYPES = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16,
                "bf16": torch.bfloat16, "i32": torch.int32, "i64": torch.int64,
                "boolean": torch.bool}


def read_manifest(directory):
    """The dump's rows, keyed by ("throughput", graph, dtype) or ("model", model)."""
    rows = {}
    with open(os.path.join(directory, "manifest.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            key = ((row["suite"], row["graph"], row["dtype"]) if row["suite"] == "throughput"
                   else (row["suite"], row["model"]))
            rows[key] = row
    return rows


def load_tensor(directory, spec, device):
    array = np.load(os.path.join(directory, spec["file"]))
    if list(array.shape) != spec["shape"]:
        raise ValueError(f"{spec['file']}: shape {list(array.shape)}, manifest says {spec['shape']}")
    tensor = torch.from_numpy(array).to(device)
    if spec["dtype"] == "bf16":
        tensor = tensor.view(torch.bfloat16)  # stored as its bits
    if tensor.dtype != TORCH_DTYPES[spec["dtype"]]:
        raise ValueError(f"{spec['file']}: {tensor.dtype}, manifest says {spec['dtype']}")
    return tensor


def relative_error(y, ref):
    """METRIC; inf where y is NaN or infinite and the reference is not."""
    y = y.double()
    scale = ref.pow(2).mean().sqrt()
    err = (y - ref).abs() / (ref.abs() + scale)
    err = torch.where(torch.isfinite(y) | ~torch.isfinite(ref), err,
                      torch.full_like(err, math.inf))
    return err.nan_to_num(nan=math.inf).max().item()


def check_row(row, fn, compiled, directory, device, documented_abs_error=0.0):
    """One "output_check" record for a dumped row: Kiln's and torch.compile's
    errors against the float64 reference, eager's, the tolerance, the verdicts.
    `documented_abs_error`: an absolute error bound Kiln documents for this
    function (0: none), admitted as documented_abs_error / rms(ref)."""
    inputs = [load_tensor(directory, spec, device) for spec in row["inputs"]]
    names = [spec["name"] for spec in row["inputs"]]
    kiln_out = load_tensor(directory, row["output"], device)
    dtype = row["output"]["dtype"]
    with torch.no_grad():
        ref = fn(*[t.double() for t in inputs], acc=torch.float64)
        eager = fn(*inputs)
        peer = compiled(*inputs)
    if ref.shape != kiln_out.shape:
        raise ValueError(f"Kiln's output is {list(kiln_out.shape)}, the reference "
                         f"{list(ref.shape)}")
    if eager.dtype != kiln_out.dtype:
        raise ValueError(f"Kiln's output is {kiln_out.dtype}, PyTorch's {eager.dtype}")
    errors = {"kiln": relative_error(kiln_out, ref), "torch_compile": relative_error(peer, ref),
              "eager": relative_error(eager, ref)}
    documented = documented_abs_error / ref.pow(2).mean().sqrt().item()
    tolerance = max(TOLERANCE_FACTOR * errors["eager"], FLOOR.get(dtype, 0.0), documented)
    rule = f"max({TOLERANCE_FACTOR:g} x eager_error, {FLOOR.get(dtype, 0.0):.3g}"
    if documented_abs_error:
        rule += f", documented {documented_abs_error:g} absolute / rms(ref)"
    record = {"bench": "output_check", "suite": row["suite"]}
    for key in ("graph", "dtype", "model", "specialization"):
        if key in row:
            record[key] = row[key]
    record.update(inputs=names, metric=METRIC,
                  kiln_error=errors["kiln"], torch_compile_error=errors["torch_compile"],
                  eager_error=errors["eager"], tolerance=tolerance,
                  tolerance_rule=rule + ")",
                  kiln_passed=errors["kiln"] <= tolerance,
                  torch_compile_passed=errors["torch_compile"] <= tolerance)
    record["passed"] = record["kiln_passed"] and record["torch_compile_passed"]
    return record


def error_record(key, message):
    """A row that could not be checked is a failed check, never a silent pass."""
    fields = ({"graph": key[1], "dtype": key[2]} if key[0] == "throughput" else {"model": key[1]})
    return {"bench": "output_check", "suite": key[0], **fields, "passed": False,
            "kiln_passed": False, "torch_compile_passed": False, "error": message}


def check_dumped(dumped, directory, key, fn, compiled, device, documented_abs_error=0.0):
    """The output_check record of the dumped row `key` (read_manifest's keys):
    check_row's, or a failed one when the row is missing, torch.compile
    errored (`compiled` is None) or the check itself raises."""
    row = dumped.get(key)
    if row is None:
        return error_record(key, "Kiln's tool dumped no such row")
    if compiled is None:
        return error_record(key, "torch.compile errored")
    try:
        return check_row(row, fn, compiled, directory, device, documented_abs_error)
    except Exception as e:  # a row that cannot be checked fails, and the others go on
        return error_record(key, f"{type(e).__name__}: {e}".splitlines()[0])


def print_table(checks, dump_option):
    """The check table a peer script prints after its own."""
    print(f"\nKiln's timed outputs ({dump_option}) checked, {TOLERANCE_FACTOR:g} x eager's error "
          "allowed")
    print(table_header())
    for c in checks:
        print(describe(c))


def describe(record):
    """One line of the check table."""
    name = record.get("model") or f"{record.get('graph')} {record.get('dtype')}"
    if "error" in record:
        return f"{name:<22} FAILED: {record['error']}"
    verdict = "ok" if record["passed"] else "FAILED"
    return (f"{name:<22} {record['kiln_error']:>10.3g} {record['torch_compile_error']:>10.3g} "
            f"{record['eager_error']:>10.3g} {record['tolerance']:>10.3g}  {verdict}")


def table_header():
    return (f"{'checked row':<22} {'Kiln':>10} {'compiled':>10} {'eager':>10} {'tolerance':>10}"
            f"  ({METRIC} against float64)")
