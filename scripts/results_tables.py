"""Markdown tables of `pixelrnn experiment` results, for RESULTS.md.

  python3 scripts/results_tables.py [EXPERIMENTS_DIR]      (default: experiments)

Reads EXPERIMENTS_DIR/TABLE/summary.json (tables 4, 5, 2, 3, those present) and prints one
markdown table per experiment: our figure beside the paper's, with steps, images seen and
training time, then the note on what differs from the paper.
"""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "experiments"
for name in ["table4", "table5", "table2", "table3"]:
    path = os.path.join(root, name, "summary.json")
    if not os.path.exists(path):
        continue
    s = json.load(open(path))
    unit = s["unit"]
    print(f"### {s['title']}\n")
    print(f"{s['dataset']}, {s['split']} split, {s['scale']} scale, on {s['machine']}"
          f"{'' if s['complete'] else ' (not all rows finished yet)'}.\n")
    print(f"| model (paper's row) | ours: layers, h, d | ours ({unit}) | paper ({unit}) | bits/dim (± s.e.) | steps | images seen | training time |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in s["rows"]:
        ours = r["nll_nats"] if unit == "nats" else r["bits_per_dim"]
        paper = "-" if r["paper"] is None else f"{r['paper']:.2f}"
        print(f"| {r['label']} | {r['layers']}, {r['hidden']}, {r['output_hidden']} | {ours:.{2 if unit == 'nats' else 3}f} | {paper} | "
              f"{r['bits_per_dim']:.4f} ± {r['stderr_bits_per_dim']:.4f} | {r['steps']:,} | {r['images_seen']:,} | "
              f"{r['train_secs'] / 60:.1f} min |")
    print(f"\n{s['note'][0].upper() + s['note'][1:]}.\n")
