#!/usr/bin/env bash
# Measures a pretrained model for its card: writes pretrained/NAME/card.json with the SHA-256 of
# its checkpoints, its NLL on the full held-out split (SPLIT: test, or valid for a dataset
# without a test split, e.g. CIFAR-10's training batches alone), and the NLL of the first
# CHECK_IMAGES (100) images of that split, which the test `pretrained_models_match_their_cards`
# checks on every machine.
#
#   scripts/model-card.sh NAME [--data-dir DIR]
#
# Environment: PIXELRNN (the binary; default target/release/pixelrnn), SPLIT (test),
# CHECK_IMAGES (100), CODEC (1: also compress the whole split with the model and record the
# file's size in bits/dim under "codec", the file of `compress --split SPLIT`), COMPARE (1: also
# `compress --chunk 1 --compact --report`: each image as its own compact .prnn, PNG, WebP and
# JPEG XL file, and all of them as one file of each, under "compare"; needs cwebp and cjxl, which
# take over a second per image here: COMPARE_LIMIT=N compares the first N images only). Uses the run's averaged
# weights when it keeps them (as eval does).
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
run=pretrained/$name
bin=${PIXELRNN:-target/release/pixelrnn}
check=${CHECK_IMAGES:-100}
split=${SPLIT:-test}
[[ -f $run/checkpoint-best.bin ]] || { echo "error: $run has no checkpoint-best.bin" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" eval --run "$run" --split "$split" --json "$@" > "$tmp/full.json"
"$bin" eval --run "$run" --split "$split" --json --limit "$check" "$@" > "$tmp/short.json"
# The two codings of the split (CODEC, COMPARE) run side by side, one thread each: each image's
# coding is sequential, so two processes use two cores better than one with two threads.
threads=()
[[ ${CODEC:-0} == 1 && ${COMPARE:-0} == 1 ]] && threads=(RAYON_NUM_THREADS=1)
pids=()
if [[ ${CODEC:-0} == 1 ]]; then
  env "${threads[@]}" "$bin" compress --run "$run" --split "$split" -o "$tmp/test.prnn" "$@" 2> "$tmp/compress.log" &
  pids+=($!)
fi
if [[ ${COMPARE:-0} == 1 ]]; then
  env "${threads[@]}" "$bin" compress --run "$run" --split "$split" ${COMPARE_LIMIT:+--limit "$COMPARE_LIMIT"} --chunk 1 --compact --json -o "$tmp/each.prnn" "$@" > "$tmp/report.json" &
  pids+=($!)
fi
for pid in "${pids[@]}"; do wait "$pid"; done
echo '{}' > "$tmp/codec.json"
if [[ ${CODEC:-0} == 1 ]]; then
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
echo '{}' > "$tmp/compare.json"
if [[ ${COMPARE:-0} == 1 ]]; then
  python3 - "$tmp/report.json" > "$tmp/compare.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
dims = r["bytes"] * 8 / r["file_bits_per_dim"]
bpd = lambda b: round(b * 8 / dims, 4)
files, batch = r["per_image_files"], r["batch"]
others = ("png", "webp", "jxl")
print(json.dumps({
    "images": r["images"],
    "one_file_per_image_bits_per_dim": {k: bpd(files[f"{k}_bytes"]) for k in ("prnn",) + others if f"{k}_bytes" in files},
    "prnn_smallest_of_images": files["prnn_smallest_images"],
    "one_file_bits_per_dim": {k: bpd(batch[f"{k}_bytes"]) for k in ("prnn",) + others if f"{k}_bytes" in batch},
    "mosaic": [batch["mosaic_width"], batch["mosaic_height"]],
    "encoders": r["encoders_found"],
}))
PY
fi
python3 - "$run" "$split" "$tmp/full.json" "$tmp/short.json" "$tmp/codec.json" "$tmp/compare.json" <<'PY'
import hashlib, json, sys
run, split = sys.argv[1:3]
full, short, codec, compare = (json.load(open(p)) for p in sys.argv[3:7])
def sha(name):
    return hashlib.sha256(open(f"{run}/{name}", "rb").read()).hexdigest()
card = {
    "checkpoint": "checkpoint-best.bin",
    "sha256": {n: sha(n) for n in ("checkpoint-best.bin", "checkpoint-last.bin")},
    "split": split,
    split: {k: full[k] for k in ("images", "nll_nats", "bits_per_dim", "stderr_bits_per_dim") if k in full},
    "check": {k: short[k] for k in ("images", "nll_nats", "bits_per_dim") if k in short},
}
if codec:
    card["codec"] = codec
if compare:
    if codec and codec["images"] == compare["images"]:
        # The batch as `compress` writes it by default (chunks of images), not the --chunk 1 file.
        compare["one_file_bits_per_dim"]["prnn"] = round(codec["file_bits_per_dim"], 4)
    card["compare"] = compare
open(f"{run}/card.json", "w").write(json.dumps(card, indent=2) + "\n")
print(json.dumps(card))
PY
