#!/usr/bin/env python3
"""Median images/s of pixelrnn and PyTorch per (spec, mode, device, batch) from bench JSON lines,
and the ratio ours / theirs. Used by bench-vs-pytorch.sh and gpu-check.sh.

    python3 scripts/ratio-table.py RESULTS.jsonl
"""
import json
import statistics
import sys

rows = []
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        rows.append(json.loads(line))


def key(r):
    device = "cpu" if r.get("device", "cpu") == "cpu" else "gpu"
    return (r["model"], r["mode"], device, r["batch"])


print(f"{'spec':<5} {'mode':<7} {'device':<6} {'batch':>5} {'pixelrnn img/s':>15} {'pytorch img/s':>14} {'ratio':>7}")
for k in sorted({key(r) for r in rows}):
    ours = [r["images_per_sec"] for r in rows if key(r) == k and r["framework"] == "pixelrnn"]
    theirs = [r["images_per_sec"] for r in rows if key(r) == k and r["framework"] == "pytorch"]
    o = f"{statistics.median(ours):>15.2f}" if ours else f"{'-':>15}"
    t = f"{statistics.median(theirs):>14.2f}" if theirs else f"{'-':>14}"
    ratio = f"{statistics.median(ours) / statistics.median(theirs):>7.2f}" if ours and theirs else f"{'-':>7}"
    print(f"{k[0]:<5} {k[1]:<7} {k[2]:<6} {k[3]:>5} {o} {t} {ratio}")
