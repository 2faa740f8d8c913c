#!/usr/bin/env bash
# Measures a pretrained model for its card: writes pretrained/NAME/card.json with the SHA-256 of
# its checkpoints, its NLL on the full test split, and the NLL of the first CHECK_IMAGES (100)
# test images, which the test `pretrained_models_match_their_cards` checks on every machine.
#
#   scripts/model-card.sh NAME [--data-dir DIR]
#
# Environment: PIXELRNN (the binary; default target/release/pixelrnn), CHECK_IMAGES (100),
# CODEC (1: also compress the whole test split with the model and record the file's size in
# bits/dim under "codec", the file of `compress --split test`). Uses the run's averaged weights when it keeps them (as eval does).
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
run=pretrained/$name
bin=${PIXELRNN:-target/release/pixelrnn}
check=${CHECK_IMAGES:-100}
[[ -f $run/checkpoint-best.bin ]] || { echo "error: $run has no checkpoint-best.bin" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" eval --run "$run" --split test --json "$@" > "$tmp/full.json"
"$bin" eval --run "$run" --split test --json --limit "$check" "$@" > "$tmp/short.json"
echo '{}' > "$tmp/codec.json"
if [[ ${CODEC:-0} == 1 ]]; then
  "$bin" compress --run "$run" --split test -o "$tmp/test.prnn" "$@" 2> "$tmp/compress.log"
  full_images=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["images"])' "$tmp/full.json")
  python3 - "$tmp/test.prnn" "$full_images" "$run/config.json" > "$tmp/codec.json" <<'PY'
import json, os, sys
path, images, config = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))
image = config["model"]["image"]
dims = images * image["channels"] * image["height"] * image["width"]
size = os.path.getsize(path)
print(json.dumps({"images": images, "bytes": size, "file_bits_per_dim": size * 8 / dims}))
PY
fi
python3 - "$run" "$tmp/full.json" "$tmp/short.json" "$tmp/codec.json" <<'PY'
import hashlib, json, sys
run, full, short, codec = sys.argv[1], *(json.load(open(p)) for p in sys.argv[2:5])
def sha(name):
    return hashlib.sha256(open(f"{run}/{name}", "rb").read()).hexdigest()
card = {
    "checkpoint": "checkpoint-best.bin",
    "sha256": {n: sha(n) for n in ("checkpoint-best.bin", "checkpoint-last.bin")},
    "test": {k: full[k] for k in ("images", "nll_nats", "bits_per_dim", "stderr_bits_per_dim") if k in full},
    "check": {k: short[k] for k in ("images", "nll_nats", "bits_per_dim") if k in short},
}
if codec:
    card["codec"] = codec
open(f"{run}/card.json", "w").write(json.dumps(card, indent=2) + "\n")
print(json.dumps(card))
PY
