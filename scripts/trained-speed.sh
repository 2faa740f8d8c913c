#!/usr/bin/env bash
# Training speed on a *trained* model (what `bench`, on fresh weights, does not see): copies
# RUN_DIR (a run with checkpoint-last.bin) once per binary, resumes it for STEPS more steps
# with each binary, and prints each binary's mean images/s over the last STEPS-10 steps.
#
#   scripts/trained-speed.sh RUN_DIR BINARY [BINARY...]
#
# Environment: STEPS (30), THREADS (1). The run's own flags are read from its config.json
# (model, data, batch, seed; a run trained with other optimizer settings is refused on resume).
# A BINARY may carry environment: "env PIXELRNN_KEEP_SUBNORMALS=1 target/release/pixelrnn".
set -euo pipefail
run=$1; shift
steps=${STEPS:-30} threads=${THREADS:-1}
[[ $steps -gt 10 ]] || { echo "error: STEPS must be over 10 (the first 10 steps are not timed)" >&2; exit 1; }
[[ -f $run/checkpoint-last.bin ]] || { echo "error: $run has no checkpoint-last.bin" >&2; exit 1; }
flags=$(python3 - "$run/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
m, d, t = c["model"], c["data"], c["training"]
f = ["--model", m["architecture"], "--dataset", d["dataset"], "--layers", m["num_layers"],
     "--hidden", m["hidden_channels"], "--output-hidden", m["output_hidden_channels"],
     "--batch-size", t["batch_size"], "--seed", t["seed"]]
if d.get("data_dir"): f += ["--data-dir", d["data_dir"]]
if d.get("no_verify"): f += ["--no-verify"]
if not m["residual"]: f += ["--no-residual"]
if not m["skip"]: f += ["--no-skip"]
if not m.get("learned_initial_state", True): f += ["--zero-initial-state"]
if m.get("diagonal_padding"): f += ["--diagonal-padding", m["diagonal_padding"]]
print(" ".join(map(str, f)))
PY
)
at=$(python3 -c "import json,sys; print(max(json.loads(l)['step'] for l in open(sys.argv[1]) if '\"checkpoint\"' in l))" "$run/metrics.jsonl")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for bin in "$@"; do
  copy=$tmp/run; rm -rf "$copy"; cp -r "$run" "$copy"; rm -f "$copy/.lock"
  # shellcheck disable=SC2086
  RAYON_NUM_THREADS=$threads $bin train $flags --steps $((at + steps)) --valid-every 0 --out "$copy" --resume --quiet > /dev/null
  python3 - "$bin" "$at" "$copy/metrics.jsonl" <<'PY'
import json, sys
bin, at = sys.argv[1], int(sys.argv[2])
v = [e["images_per_sec"] for e in map(json.loads, open(sys.argv[3])) if e.get("event") == "step" and e["step"] > at + 10]
print(json.dumps({"binary": bin, "from_step": at, "steps": len(v), "images_per_sec": sum(v) / len(v)}))
PY
done
