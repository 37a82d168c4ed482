#!/usr/bin/env python3
"""Puts gpu_bench's and torch_peer.py's figures side by side.

Reads JSON lines (other lines, such as the tools' tables, are skipped) from
the given files, prints one row per graph and dtype: Kiln GB/s and its
fraction of the copy ceiling measured in Kiln's run, torch.compile GB/s and
its fraction of the copy ceiling measured in torch's run, the Kiln/torch
ratio, and whether ANCHORS.md's target holds (Kiln >= torch.compile and
>= 90% of copy). When a side was measured in several rounds (run.sh
alternates the two tools), each figure is the median of its rounds, and the
row carries the rounds' range: torch.compile's f32 norms moved by 3% of copy
from one process to the next on an H200 while Kiln's moved by 0.4%. With
--out, writes every input record plus one comparison record per row, each
carrying date (UTC), device and commit.

A row is compared only when its output was checked and passed: the
"output_check" records (output_check.py, written by torch_peer.py and
torch_models.py --check) say whether the output of the call Kiln timed, and
torch.compile's on the same inputs, match a float64 reference. A row whose
check failed or is missing is printed as such and left out of the comparison.

A failed run is never a result: when a step failed (--failed-step, given by
run.sh) or a record says a check failed (a non-zero "exit", "failed" above
zero, "passed": false), no comparison is drawn; the merged file then holds
the records and one "gpu_run" record with "passed": false and the reasons,
and the exit status is 1. A run that passed gets "gpu_run" "passed": true.

Usage: merge_results.py [--commit C] [--date D] [--device NAME] [--out FILE]
                        [--failed-step STEP]... FILE...
       merge_results.py --self-test
"""

import argparse
import datetime
import json
import statistics
import sys

COPY_FRACTION_TARGET = 0.9
GRAPH_ORDER = ["gelu_affine", "softmax", "layernorm", "rmsnorm"]
DTYPE_ORDER = ["f32", "bf16"]


def read_records(lines):
    records = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line of a table that happens to start with "{"
    return records


def combine(records):
    """One side's records of one row, from one or more rounds: the medians of
    the rounds that measured, their number and range; or the first error."""
    measured = [r for r in records if r.get("gb_per_s") is not None]
    if not measured:
        return records[0] if records else {}
    gbs = sorted(r["gb_per_s"] for r in measured)
    fractions = [r["fraction_of_copy"] for r in measured if r.get("fraction_of_copy") is not None]
    return {"gb_per_s": round(statistics.median(gbs), 1),
            "fraction_of_copy": round(statistics.median(fractions), 4) if fractions else None,
            "rounds": len(measured), "errored_rounds": len(records) - len(measured),
            "gb_per_s_min": gbs[0], "gb_per_s_max": gbs[-1]}


def output_checks(records):
    """The output_check records, keyed as the comparison rows are: ("throughput",
    graph, dtype) or ("model", model). A row checked in several rounds keeps
    its worst verdict."""
    checks = {}
    for r in records:
        if r.get("bench") != "output_check":
            continue
        key = ((r.get("suite"), r.get("graph"), r.get("dtype")) if r.get("suite") == "throughput"
               else (r.get("suite"), r.get("model")))
        if key not in checks or not r.get("passed"):
            checks[key] = r
    return checks


def check_verdict(check):
    """"passed", "failed: why" or "unchecked": whether a row may be compared."""
    if check is None:
        return "unchecked"
    if check.get("passed") is True:
        return "passed"
    if "error" in check:
        return "failed: " + check["error"]
    sides = [label for side, label in (("kiln", "Kiln"), ("torch_compile", "torch.compile"))
             if check.get(f"{side}_passed") is not True]
    return "failed: " + ", ".join(
        f"{label} error {check.get(side + '_error', float('nan')):.3g} > tolerance "
        f"{check.get('tolerance', float('nan')):.3g}"
        for side, label in (("kiln", "Kiln"), ("torch_compile", "torch.compile"))
        if label in sides)


def compare(records):
    """One dict per (graph, dtype) that either side measured, in ANCHORS.md's order."""
    checks = output_checks(records)
    kiln, torch = {}, {}
    for r in records:
        side = {"gpu_throughput": kiln, "torch_compile_throughput": torch}.get(r.get("bench"))
        if side is not None:
            side.setdefault((r.get("graph"), r.get("dtype")), []).append(r)

    def order(key):
        graph, dtype = key
        return (DTYPE_ORDER.index(dtype) if dtype in DTYPE_ORDER else len(DTYPE_ORDER),
                GRAPH_ORDER.index(graph) if graph in GRAPH_ORDER else len(GRAPH_ORDER),
                str(graph))

    rows = []
    for key in sorted(set(kiln) | set(torch), key=order):
        k, t = combine(kiln.get(key, [])), combine(torch.get(key, []))
        row = {"bench": "gpu_vs_torch_compile", "graph": key[0], "dtype": key[1],
               "kiln_gb_per_s": k.get("gb_per_s"),
               "kiln_fraction_of_copy": k.get("fraction_of_copy"),
               "torch_gb_per_s": t.get("gb_per_s"),
               "torch_fraction_of_copy": t.get("fraction_of_copy"),
               "ratio": None, "target_met": None}
        for side, c in (("kiln", k), ("torch", t)):
            if c.get("rounds"):
                row[f"{side}_rounds"] = c["rounds"]
                row[f"{side}_gb_per_s_range"] = [c["gb_per_s_min"], c["gb_per_s_max"]]
                if c["errored_rounds"]:
                    row[f"{side}_errored_rounds"] = c["errored_rounds"]
        errors = [f"{side}: {r['error']}"
                  for side, r in (("kiln", k), ("torch", t)) if "error" in r]
        if errors:
            row["errors"] = errors
        row["check"] = check_verdict(checks.get(("throughput",) + key))
        if row["check"] != "passed":
            rows.append(row)  # printed as failed or unchecked, never compared
            continue
        if row["kiln_gb_per_s"] and row["torch_gb_per_s"]:
            row["ratio"] = round(row["kiln_gb_per_s"] / row["torch_gb_per_s"], 4)
        if row["ratio"] is not None and row["kiln_fraction_of_copy"] is not None:
            row["target_met"] = (row["ratio"] >= 1.0
                                 and row["kiln_fraction_of_copy"] >= COPY_FRACTION_TARGET)
        rows.append(row)
    return rows


def compare_models(records):
    """One dict per model example (gpu_models.cpp against torch_models.py):
    each side's median ms per call over its rounds, torch/Kiln (above 1:
    Kiln is faster) and whether ANCHORS.md's target (Kiln's time at most
    torch.compile's) holds."""
    checks = output_checks(records)
    kiln, torch = {}, {}
    for r in records:
        side = {"gpu_model": kiln, "torch_model": torch}.get(r.get("bench"))
        if side is not None:
            side.setdefault(r.get("model"), []).append(r)
    rows = []
    for model in sorted(set(kiln) | set(torch), key=str):
        row = {"bench": "model_vs_torch_compile", "model": model}
        for name, side in (("kiln", kiln), ("torch", torch)):
            times = sorted(r["median_ms"] for r in side.get(model, [])
                           if r.get("median_ms") is not None)
            row[f"{name}_ms"] = round(statistics.median(times), 4) if times else None
            row[f"{name}_rounds"] = len(times)
            errors = [r["error"] for r in side.get(model, []) if "error" in r]
            if errors:
                row.setdefault("errors", []).append(f"{name}: {errors[0]}")
        row["check"] = check_verdict(checks.get(("model", model)))
        both = row["kiln_ms"] and row["torch_ms"] and row["check"] == "passed"
        row["speedup"] = round(row["torch_ms"] / row["kiln_ms"], 4) if both else None
        row["target_met"] = row["kiln_ms"] <= row["torch_ms"] if both else None
        rows.append(row)
    return rows


def excluded_lines(rows, name):
    """The rows left out of a comparison, and why."""
    return [f"  {name(r)}: output check {r['check']}" for r in rows if r["check"] != "passed"]


def run_failures(records, failed_steps):
    """Why the run failed: the steps run.sh says failed, then every record
    that reports a failed check. Empty when the run passed."""
    reasons = [f"step failed: {step}" for step in failed_steps]
    for r in records:
        bench = r.get("bench", "?")
        if bench == "output_check" and r.get("passed") is not True:
            reasons.append(f"output_check {r.get('model') or (r.get('graph'), r.get('dtype'))}: "
                           + check_verdict(r)[len("failed: "):])
        elif bench != "output_check" and r.get("exit") not in (None, 0):
            reasons.append(f"{bench}: exit {r['exit']}")
        elif r.get("failed") not in (None, 0):
            reasons.append(f"{bench}: {r['failed']} failed")
        elif r.get("passed") is False or r.get("ok") is False:
            what = " ".join(str(r[k]) for k in ("case", "graph", "what") if k in r)
            reasons.append(f"{r.get('check', bench)} {what}: not passed".replace("  ", " "))
    return reasons


def model_table(rows):
    lines = [f"{'model':<22} {'Kiln ms':>9} {'torch ms':>9} {'torch/Kiln':>10}  "
             f"target (Kiln <= torch.compile)"]
    for r in rows:
        def num(v):
            return format(v, ".4f") if v is not None else "-"
        if r["check"] != "passed":
            continue  # listed below the table
        verdict_text = {True: "yes", False: "no", None: "? " + "; ".join(r.get("errors", []))}
        lines.append(f"{r['model']:<22} {num(r['kiln_ms']):>9} {num(r['torch_ms']):>9} "
                     f"{num(r['speedup']):>10}  {verdict_text[r['target_met']]}")
    excluded = excluded_lines(rows, lambda r: r["model"])
    if excluded:
        lines += ["not compared:"] + excluded
    return "\n".join(lines)


def verdict(row):
    if row["target_met"] is None:
        # The error itself is in the tool's log and in the merged record.
        errored = {e.split(":", 1)[0] for e in row.get("errors", [])}
        gaps = [f"{label} {'errored' if side in errored else 'missing'}"
                for side, label in (("kiln", "Kiln"), ("torch", "torch.compile"))
                if row[f"{side}_gb_per_s"] is None]
        return "? (" + ", ".join(gaps) + ")"
    if row["target_met"]:
        return "yes"
    why = []
    if row["ratio"] < 1.0:
        why.append("below torch.compile")
    if row["kiln_fraction_of_copy"] < COPY_FRACTION_TARGET:
        why.append(f"under {COPY_FRACTION_TARGET:.0%} of copy")
    return "no (" + ", ".join(why) + ")"


def table(rows):
    def num(v, fmt):
        return format(v, fmt) if v is not None else "-"

    def pct(v):
        return format(100 * v, ".1f") + "%" if v is not None else "-"

    def spread(r, side):
        lo_hi = r.get(f"{side}_gb_per_s_range")
        return f"{lo_hi[0]:.0f}-{lo_hi[1]:.0f}" if lo_hi and r.get(f"{side}_rounds", 1) > 1 else "-"

    lines = [f"{'graph':<12} {'dtype':<5} {'Kiln GB/s':>10} {'% copy':>7} {'range':>10} "
             f"{'torch GB/s':>10} {'% copy':>7} {'range':>10} {'Kiln/torch':>10}  "
             f"target (>= torch, >= 90% copy)"]
    for r in rows:
        if r["check"] != "passed":
            continue  # listed below the table
        lines.append(f"{r['graph']:<12} {r['dtype']:<5} {num(r['kiln_gb_per_s'], '.1f'):>10} "
                     f"{pct(r['kiln_fraction_of_copy']):>7} {spread(r, 'kiln'):>10} "
                     f"{num(r['torch_gb_per_s'], '.1f'):>10} "
                     f"{pct(r['torch_fraction_of_copy']):>7} {spread(r, 'torch'):>10} "
                     f"{num(r['ratio'], '.3f'):>10}  {verdict(r)}")
    rounds = sorted({r.get(f"{side}_rounds", 1) for r in rows for side in ("kiln", "torch")})
    if rounds and rounds[-1] > 1:
        lines.append(f"(medians of {'/'.join(map(str, rounds))} rounds; range: min-max GB/s)")
    excluded = excluded_lines(rows, lambda r: f"{r['graph']} {r['dtype']}")
    if excluded:
        lines += ["not compared:"] + excluded
    return "\n".join(lines)


JIT_FIGURES = ("nvrtc_compile_ms", "first_call_ms", "disk_hit_ms", "jit_hit_ms")


def jit_summary(records):
    """gpu_jit's per-graph medians ("jit_cuda") summed up over the graphs:
    for each figure the smallest, the median and the largest, and the graph
    each extreme belongs to. None when gpu_jit did not run."""
    graphs = [r for r in records if r.get("bench") == "jit_cuda"]
    if not graphs:
        return None
    summary = {"bench": "jit_cuda_summary", "graphs": len(graphs)}
    for figure in JIT_FIGURES:
        measured = sorted((r[figure], r.get("graph")) for r in graphs if r.get(figure) is not None)
        if not measured:
            continue
        summary[figure] = {"min": measured[0][0], "median": statistics.median(v for v, _ in measured),
                           "max": measured[-1][0], "min_graph": measured[0][1],
                           "max_graph": measured[-1][1]}
    return summary


def device_of(records):
    for bench in ("gpu_throughput", "gpu_copy", "torch_compile_throughput", "torch_copy"):
        for r in records:
            if r.get("bench") == bench and r.get("device"):
                return r["device"]
    return "unknown"


def merged_lines(records, rows, date, device, commit):
    """Every record, then the comparisons, each led by date, device and commit."""
    out = []
    for r in records + rows:
        rest = {k: v for k, v in r.items() if k not in ("date", "device", "commit")}
        # The tools' own "device" is the GPU's name, as is ours: keep one.
        out.append(json.dumps({"date": date, "device": device, "commit": commit, **rest}))
    return out


def self_test():
    sample = [
        "gpu_bench's table lines are skipped",
        '{"bench":"gpu_copy","gb_per_s":4000.0,"device":"NVIDIA Test"}',
        '{"bench":"gpu_throughput","graph":"gelu_affine","dtype":"f32","gb_per_s":3900.0,'
        '"copy_gb_per_s":4000.0,"fraction_of_copy":0.975,"device":"NVIDIA Test"}',
        '{"bench":"gpu_throughput","graph":"softmax","dtype":"f32","gb_per_s":3000.0,'
        '"copy_gb_per_s":4000.0,"fraction_of_copy":0.75,"device":"NVIDIA Test"}',
        '{"bench":"gpu_throughput","graph":"rmsnorm","dtype":"bf16","gb_per_s":3500.0,'
        '"copy_gb_per_s":4000.0,"fraction_of_copy":0.875,"device":"NVIDIA Test"}',
        '{"bench":"gpu_throughput","graph":"layernorm","dtype":"bf16","error":"boom",'
        '"device":"NVIDIA Test"}',
        '{"bench":"gpu_throughput","graph":"gelu_affine","dtype":"bf16","gb_per_s":2500.0,'
        '"copy_gb_per_s":4000.0,"fraction_of_copy":0.625,"device":"NVIDIA Test"}',
        '{"bench":"torch_copy","gb_per_s":4200.0,"device":"NVIDIA Test"}',
        '{"bench":"torch_compile_throughput","graph":"gelu_affine","dtype":"f32",'
        '"gb_per_s":3800.0,"copy_gb_per_s":4200.0,"fraction_of_copy":0.9048}',
        '{"bench":"torch_compile_throughput","graph":"softmax","dtype":"f32","gb_per_s":3278.0,'
        '"copy_gb_per_s":4200.0,"fraction_of_copy":0.7805}',
        '{"bench":"torch_compile_throughput","graph":"rmsnorm","dtype":"bf16","gb_per_s":3476.0,'
        '"copy_gb_per_s":4200.0,"fraction_of_copy":0.8276}',
        '{"bench":"torch_compile_throughput","graph":"layernorm","dtype":"bf16",'
        '"gb_per_s":2777.0,"copy_gb_per_s":4200.0,"fraction_of_copy":0.6612}',
    ]
    records = read_records(sample)
    assert len(records) == 11, len(records)
    # Two more rounds of gelu f32 on each side: the medians decide.
    records += read_records([
        '{"bench":"gpu_throughput","graph":"gelu_affine","dtype":"f32","gb_per_s":3950.0,'
        '"copy_gb_per_s":4000.0,"fraction_of_copy":0.9875}',
        '{"bench":"gpu_throughput","graph":"gelu_affine","dtype":"f32","gb_per_s":3700.0,'
        '"copy_gb_per_s":4000.0,"fraction_of_copy":0.925}',
        '{"bench":"torch_compile_throughput","graph":"gelu_affine","dtype":"f32",'
        '"gb_per_s":4100.0,"copy_gb_per_s":4200.0,"fraction_of_copy":0.9762}',
        '{"bench":"torch_compile_throughput","graph":"gelu_affine","dtype":"f32",'
        '"error":"RuntimeError: one round failed"}',
    ])
    # The output checks: every measured row passed but softmax bf16 (Kiln's
    # output off) and layernorm bf16 (Kiln errored, so nothing to check).
    def check(graph, dtype, kiln_error=1e-7, tolerance=4e-7):
        return json.dumps({"bench": "output_check", "suite": "throughput", "graph": graph,
                           "dtype": dtype, "kiln_error": kiln_error,
                           "torch_compile_error": 1e-7, "eager_error": 1e-7,
                           "tolerance": tolerance, "kiln_passed": kiln_error <= tolerance,
                           "torch_compile_passed": True, "passed": kiln_error <= tolerance})
    records += read_records([
        check("gelu_affine", "f32"), check("softmax", "f32"), check("rmsnorm", "bf16"),
        check("gelu_affine", "bf16"), check("softmax", "bf16", kiln_error=0.5, tolerance=0.03),
        '{"bench":"gpu_throughput","graph":"softmax","dtype":"bf16","gb_per_s":4000.0,'
        '"copy_gb_per_s":4000.0,"fraction_of_copy":1.0}',
        '{"bench":"torch_compile_throughput","graph":"softmax","dtype":"bf16",'
        '"gb_per_s":1700.0,"copy_gb_per_s":4200.0,"fraction_of_copy":0.4048}',
    ])
    rows = compare(records)
    by_key = {(r["graph"], r["dtype"]): r for r in rows}
    assert [(r["graph"], r["dtype"]) for r in rows] == [
        ("gelu_affine", "f32"), ("softmax", "f32"), ("gelu_affine", "bf16"), ("softmax", "bf16"),
        ("layernorm", "bf16"), ("rmsnorm", "bf16")], rows

    # A row whose output check failed, or that has none, is never compared.
    wrong = by_key[("softmax", "bf16")]
    assert wrong["ratio"] is None and wrong["target_met"] is None, wrong
    assert wrong["check"].startswith("failed: Kiln error 0.5 > tolerance 0.03"), wrong
    assert by_key[("layernorm", "bf16")]["check"] == "unchecked", by_key[("layernorm", "bf16")]

    # Kiln: median of 3900, 3950, 3700; torch: median of 3800 and 4100 (the
    # failed round does not count).
    gelu = by_key[("gelu_affine", "f32")]
    assert gelu["kiln_gb_per_s"] == 3900.0 and gelu["kiln_rounds"] == 3, gelu
    assert gelu["kiln_fraction_of_copy"] == 0.975, gelu
    assert gelu["kiln_gb_per_s_range"] == [3700.0, 3950.0], gelu
    assert gelu["torch_gb_per_s"] == 3950.0 and gelu["torch_rounds"] == 2, gelu
    assert gelu["torch_errored_rounds"] == 1 and "kiln_errored_rounds" not in gelu, gelu
    assert gelu["ratio"] == round(3900.0 / 3950.0, 4) == 0.9873, gelu
    assert gelu["target_met"] is False and verdict(gelu) == "no (below torch.compile)", gelu

    soft = by_key[("softmax", "f32")]
    assert soft["ratio"] == round(3000.0 / 3278.0, 4) == 0.9152, soft
    assert soft["target_met"] is False, soft
    assert verdict(soft) == "no (below torch.compile, under 90% of copy)", verdict(soft)

    # Faster than torch.compile but under 90% of copy: the target is both.
    rms = by_key[("rmsnorm", "bf16")]
    assert rms["ratio"] == round(3500.0 / 3476.0, 4) == 1.0069, rms
    assert rms["target_met"] is False and verdict(rms) == "no (under 90% of copy)", verdict(rms)

    ln = by_key[("layernorm", "bf16")]
    assert ln["ratio"] is None and ln["target_met"] is None and ln["errors"] == ["kiln: boom"], ln

    only_kiln = by_key[("gelu_affine", "bf16")]
    assert only_kiln["ratio"] is None and "errors" not in only_kiln, only_kiln
    assert verdict(only_kiln) == "? (torch.compile missing)", verdict(only_kiln)

    text = table(rows)
    assert "97.5%" in text and "94.0%" in text and "0.987" in text, text
    assert "3700-3950" in text and "3800-4100" in text and "medians of 1/2/3 rounds" in text, text
    compared, excluded = text.split("not compared:")
    assert "softmax      bf16" not in compared and "layernorm    bf16" not in compared, text
    assert "softmax bf16: output check failed: Kiln error 0.5" in excluded, text
    assert "layernorm bf16: output check unchecked" in excluded, text

    assert device_of(records) == "NVIDIA Test"
    out = merged_lines(records, rows, "2026-11-22T00:00:00Z", "NVIDIA Test", "abc1234")
    assert len(out) == len(records) + len(rows)
    for line in out:
        r = json.loads(line)
        assert list(r)[:3] == ["date", "device", "commit"], r
        assert (r["date"], r["device"], r["commit"]) == (
            "2026-11-22T00:00:00Z", "NVIDIA Test", "abc1234"), r
    last = json.loads(out[-1])
    assert last["bench"] == "gpu_vs_torch_compile" and last["graph"] == "rmsnorm", last
    models = compare_models(read_records([
        '{"bench":"gpu_model","model":"mlp","median_ms":0.25}',
        '{"bench":"gpu_model","model":"mlp","median_ms":0.23}',
        '{"bench":"gpu_model","model":"mlp","median_ms":0.24}',
        '{"bench":"torch_model","model":"mlp","median_ms":0.26}',
        '{"bench":"output_check","suite":"model","model":"mlp","passed":true}',
        '{"bench":"gpu_model","model":"attention_b1_n8192","median_ms":0.2}',
        '{"bench":"torch_model","model":"attention_b1_n8192","median_ms":0.308}',
        '{"bench":"output_check","suite":"model","model":"attention_b1_n8192","passed":false,'
        '"kiln_passed":false,"torch_compile_passed":false,"error":"Kiln dumped nothing"}',
        '{"bench":"gpu_model","model":"attention_b16_n2048","error":"boom"}',
        '{"bench":"torch_model","model":"attention_b16_n2048","median_ms":0.28}',
    ]))
    assert [m["model"] for m in models] == [
        "attention_b16_n2048", "attention_b1_n8192", "mlp"], models
    attn16, attn1, mlp = models
    assert mlp["kiln_ms"] == 0.24 and mlp["kiln_rounds"] == 3 and mlp["torch_ms"] == 0.26, mlp
    assert mlp["speedup"] == round(0.26 / 0.24, 4) and mlp["target_met"] is True, mlp
    assert attn16["kiln_ms"] is None and attn16["target_met"] is None, attn16
    assert attn16["errors"] == ["kiln: boom"] and attn16["check"] == "unchecked", attn16
    # Faster, but its output was not right: no speedup is claimed.
    assert attn1["speedup"] is None and attn1["target_met"] is None, attn1
    assert attn1["check"] == "failed: Kiln dumped nothing", attn1
    text_models = model_table(models)
    assert "1.0833" in text_models and "attention_b1_n8192: output check failed" in text_models
    assert "attention_b16_n2048: output check unchecked" in text_models, text_models

    # A failed run: its step failures and every failed record are the reasons.
    failures = run_failures(records + read_records([
        '{"bench":"gpu_check","passed":617,"failed":2,"exit":1}',
        '{"bench":"gpu_gemm","case":"f32 m1","passed":false}',
        '{"check":"gpu_jit","graph":"softmax_f32","what":"disk hit","ok":false}',
        '{"bench":"test_cuda_launcher","exit":0,"tests":22,"skipped":0}',
    ]), ["gpu_check (exit 1)"])
    assert failures[0] == "step failed: gpu_check (exit 1)", failures
    assert "output_check ('softmax', 'bf16'): Kiln error 0.5 > tolerance 0.03" in failures, failures
    assert "gpu_check: exit 1" in failures and "gpu_gemm f32 m1: not passed" in failures, failures
    assert "gpu_jit softmax_f32 disk hit: not passed" in failures, failures
    assert len(failures) == 5, failures
    assert run_failures(read_records(['{"bench":"gpu_check","passed":619,"failed":0,"exit":0}']),
                        []) == []
    jit = jit_summary(read_records([
        '{"bench":"jit_cuda","graph":"softmax","nvrtc_compile_ms":24.0,"disk_hit_ms":0.5}',
        '{"bench":"jit_cuda","graph":"reduce_axes","nvrtc_compile_ms":412.0,"disk_hit_ms":2.26}',
        '{"bench":"jit_cuda","graph":"gelu","nvrtc_compile_ms":12.0,"disk_hit_ms":0.3}',
    ]))
    assert jit["graphs"] == 3 and jit["nvrtc_compile_ms"] == {
        "min": 12.0, "median": 24.0, "max": 412.0, "min_graph": "gelu",
        "max_graph": "reduce_axes"}, jit
    assert jit["disk_hit_ms"]["max"] == 2.26 and "first_call_ms" not in jit, jit
    assert jit_summary([]) is None
    print(text)
    print(text_models)
    print("merge_results: self-test passed")
    return 0


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", help="JSON-lines files of gpu_bench and torch_peer.py")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--date", help="UTC date and time; default: now")
    parser.add_argument("--device", help="default: the device the records name")
    parser.add_argument("--out", help="write the merged JSON lines here")
    parser.add_argument("--failed-step", action="append", default=[], metavar="STEP",
                        help="a step of the run that failed (run.sh); repeatable")
    parser.add_argument("--self-test", action="store_true",
                        help="check the arithmetic on a built-in example")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.files:
        parser.error("no input files")

    records = []
    for path in args.files:
        with open(path) as f:
            records += read_records(f)
    date = args.date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    device = args.device or device_of(records)
    print(f"{device}, commit {args.commit}, {date}")
    failures = run_failures(records, args.failed_step)
    if failures:
        print(f"run FAILED ({len(failures)} reason(s)); no comparison is drawn from it:")
        for reason in failures:
            print(f"  {reason}")
        summary = [{"bench": "gpu_run", "passed": False, "failures": failures}]
    else:
        rows = compare(records)
        models = compare_models(records)
        print(table(rows) if rows else "no gpu_throughput or torch_compile_throughput records")
        if models:
            print()
            print(model_table(models))
        jit = jit_summary(records)
        if jit is not None:
            print()
            print(f"CUDA JIT over {jit['graphs']} graphs (gpu_jit medians per graph): "
                  + "; ".join(f"{figure} {jit[figure]['min']}-{jit[figure]['max']} "
                              f"(median {jit[figure]['median']:.4g}, max {jit[figure]['max_graph']})"
                              for figure in JIT_FIGURES if figure in jit))
        summary = rows + models + ([jit] if jit else []) + [{"bench": "gpu_run", "passed": True}]
    if args.out:
        with open(args.out, "w") as f:
            for line in merged_lines(records, summary, date, device, args.commit):
                f.write(line + "\n")
        print(f"merged: {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
