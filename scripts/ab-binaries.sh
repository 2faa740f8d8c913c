#!/usr/bin/env bash
# A/B of two pixelrnn binaries (e.g. before and after a change): `bench` for every spec and
# mode, the two binaries run alternately, ROUNDS times each; prints images/s (median over the
# rounds) of each and the ratio new/old.
#
#   scripts/ab-binaries.sh OLD_BINARY NEW_BINARY [RESULTS.jsonl]
#
# Environment: ROUNDS (3), THREADS (2), SPECS ("m1 m2 m3 m4"), MODES ("train infer sample").
set -euo pipefail
old=$1 new=$2 out=${3:-ab-results.jsonl}
rounds=${ROUNDS:-3} threads=${THREADS:-2}
specs=${SPECS:-m1 m2 m3 m4} modes=${MODES:-train infer sample}
: > "$out"
for spec in $specs; do
  for mode in $modes; do
    s=10; w=3
    if [[ $mode == sample ]]; then s=3; w=1; fi
    for ((r = 1; r <= rounds; r++)); do
      for which in old new; do
        bin=$old; [[ $which == new ]] && bin=$new
        line=$("$bin" bench --spec "$spec" --mode "$mode" --steps "$s" --warmup "$w" --threads "$threads" --json)
        echo "{\"binary\":\"$which\",${line#\{}" >> "$out"
      done
    done
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = sorted({(r["model"], r["mode"]) for r in rows})
print(f"{'spec':<5} {'mode':<7} {'old img/s':>10} {'new img/s':>10} {'new/old':>8}")
for spec, mode in keys:
    med = {b: statistics.median(r["images_per_sec"] for r in rows if (r["model"], r["mode"], r["binary"]) == (spec, mode, b)) for b in ("old", "new")}
    print(f"{spec:<5} {mode:<7} {med['old']:>10.1f} {med['new']:>10.1f} {med['new'] / med['old']:>8.3f}")
PY
