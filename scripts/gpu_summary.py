#!/usr/bin/env python3
"""Folds the outputs of scripts/gpu-check.sh (gtest JSON reports, `ovis bench --json` lines,
the PyTorch baselines' output, environment notes) into one summary.json with the issue's
targets checked. Usage: gpu_summary.py OUTDIR"""
import glob
import json
import os
import re
import sys

out = sys.argv[1]


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


summary = {"environment": read_json(os.path.join(out, "environment.json")) or {},
           "binary": (read_json(os.path.join(out, "binary.json")) or {}).get("binary")}

# Tests: every gtest report; a GPU run must have no failure and no skip.
tests = {}
for path in sorted(glob.glob(os.path.join(out, "tests_*.json"))):
    name = os.path.basename(path)[6:-5]
    rep = read_json(path)
    if rep is None:
        tests[name] = {"error": "no report (crashed or timed out)"}
        continue
    t = f = s = 0
    failed = []
    for suite in rep.get("testsuites", []):
        for case in suite.get("testsuite", []):
            t += 1
            if case.get("result") == "SKIPPED" or case.get("status") == "NOTRUN":
                s += 1
            if case.get("failures"):
                f += 1
                failed.append(suite["name"] + "." + case["name"])
    tests[name] = {"tests": t, "failures": f, "skipped": s, "failed": failed}
summary["tests"] = tests
summary["tests_ok"] = bool(tests) and all(
    "error" not in v and v["failures"] == 0 and v["skipped"] == 0 for v in tests.values())

bench = {}
for what in ["llm", "dit", "t2i", "edit"]:
    txt = read_text(os.path.join(out, f"bench_{what}.json")).strip().splitlines()
    bench[what] = json.loads(txt[-1]) if txt and txt[-1].startswith("{") else None
summary["bench"] = bench

base = {}
for name, pat in [("torch_dit_s", r"torch_dit_s ([0-9.]+)"),
                  ("torch_prefill_tok_s", r"torch_prefill_tok_s ([0-9.]+)"),
                  ("torch_decode_tok_s", r"torch_decode_tok_s ([0-9.]+)")]:
    m = re.search(pat, read_text(os.path.join(out, "baselines.txt")))
    base[name] = float(m.group(1)) if m else None
summary["baselines_same_run"] = base
summary["official_pipeline_h100"] = {"t2i_1024_50_s": 3.98, "edit_1024_50_s": 8.52,
                                     "t2i_peak_gb": 11.65, "edit_peak_gb": 11.36,
                                     "und_tok_s": 13}


def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


targets = []


def target(name, value, op, bound):
    ok = value is not None and bound is not None and (value <= bound if op == "<=" else value >= bound)
    targets.append({"measure": name, "value": value, "target": f"{op} {bound}", "ok": ok})


target("T2I 1024x1024, 50 steps: total_s", get(bench, "t2i", "total_s"), "<=", 2.0)
target("edit 1024x1024, 50 steps: total_s", get(bench, "edit", "total_s"), "<=", 4.0)
dit, tdit = get(bench, "dit", "dit_forward_s"), base["torch_dit_s"]
target("DiT forward 1024x1024 / PyTorch forward", dit / tdit if dit and tdit else None, "<=", 0.6)
target("decode tok/s", get(bench, "llm", "decode_tok_s"), ">=", 400)
target("prefill tok/s (512 tokens)", get(bench, "llm", "prefill_tok_s"), ">=", 50000)
target("T2I peak device memory (GB)", get(bench, "t2i", "peak_vram_gb"), "<=", 8.0)
target("edit peak device memory (GB)", get(bench, "edit", "peak_vram_gb"), "<=", 8.0)
summary["targets"] = targets
summary["all_targets_met"] = all(t["ok"] for t in targets)
summary["passed"] = summary["tests_ok"] and summary["all_targets_met"]

with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
print(json.dumps({"tests_ok": summary["tests_ok"], "targets": targets}, indent=1))
