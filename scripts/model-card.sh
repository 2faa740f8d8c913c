#!/usr/bin/env bash
# Measures a pretrained model for its card: writes pretrained/NAME/card.json with the SHA-256 of
# its checkpoints, its NLL on the full test split, and the NLL of the first CHECK_IMAGES (100)
# test images, which the test `pretrained_models_match_their_cards` checks on every machine.
#
#   scripts/model-card.sh NAME [--data-dir DIR]
#
# Environment: PIXELRNN (the binary; default target/release/pixelrnn), CHECK_IMAGES (100),
# CODEC (1: also compress the whole test split with the model and record the file's size in
# bits/dim under "codec"). Uses the run's averaged weights when it keeps them (as eval does).
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
run=pretrained/$name
bin=${PIXELRNN:-target/release/pixelrnn}
check=${CHECK_IMAGES:-100}
[[ -f $run/checkpoint-best.bin ]] || { echo "error: $run has no checkpoint-best.bin" >&2; exit 1; }
full=$("$bin" eval --run "$run" --split test --json "$@")
short=$("$bin" eval --run "$run" --split test --json --limit "$check" "$@")
codec='{}'
if [[ ${CODEC:-0} == 1 ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  codec=$("$bin" compress --run "$run" --split test -o "$tmp/test.prnn" --json "$@")
fi
python3 - "$run" "$full" "$short" "$codec" <<'PY'
import hashlib, json, sys
run, full, short, codec = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
def sha(name):
    return hashlib.sha256(open(f"{run}/{name}", "rb").read()).hexdigest()
header = None
card = {
    "checkpoint": "checkpoint-best.bin",
    "sha256": {n: sha(n) for n in ("checkpoint-best.bin", "checkpoint-last.bin")},
    "test": {k: full[k] for k in ("images", "nll_nats", "bits_per_dim", "stderr_bits_per_dim") if k in full},
    "check": {k: short[k] for k in ("images", "nll_nats", "bits_per_dim") if k in short},
}
if codec:
    card["codec"] = {k: codec[k] for k in ("images", "bytes", "file_bits_per_dim", "nll_bits_per_dim") if k in codec}
open(f"{run}/card.json", "w").write(json.dumps(card, indent=2) + "\n")
print(json.dumps(card))
PY
