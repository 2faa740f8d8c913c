#!/usr/bin/env bash
# The successors' parts side by side on CIFAR-10 at this machine's scale: the paper's PixelCNN
# with its 256-way softmax, the same PixelCNN with PixelCNN++'s discretized logistic mixture,
# and a Gated PixelCNN with the mixture; each 4 layers, h = 32, d = 128 (the reduced Table 5
# models of RESULTS.md), the same seed, batch, optimizer and steps; scored on the same held-out
# training images. Prints one line per model (bits/dim, ± s.e., training minutes).
#
#   scripts/successors-cifar10.sh CIFAR_DIR [OUT_DIR]     (CIFAR_DIR: cifar-10-batches-bin files)
#
# Environment: STEPS (1000), VALID (1000 images scored), PIXELRNN (the binary; default
# target/release/pixelrnn), RAYON_NUM_THREADS as usual.
set -euo pipefail
data=${1:?usage: scripts/successors-cifar10.sh CIFAR_DIR [OUT_DIR]}
out=${2:-experiments/successors-cifar10}
steps=${STEPS:-1000} valid=${VALID:-1000}
bin=${PIXELRNN:-target/release/pixelrnn}
mkdir -p "$out"
common=(--dataset cifar10 --data-dir "$data" --no-verify --preset small --layers 4 --hidden 32 --output-hidden 128
  --steps "$steps" --batch-size 16 --seed 1 --valid-every "$steps" --valid-limit "$valid" --checkpoint-every "$steps" --quiet)
run() {
  local name=$1; shift
  if [[ ! -f $out/$name/checkpoint-last.bin ]]; then
    local start=$SECONDS
    "$bin" train "${common[@]}" "$@" --out "$out/$name" --overwrite
    echo "$(( SECONDS - start ))" > "$out/$name/train-seconds.txt"
  fi
  "$bin" eval --run "$out/$name" --split valid --limit "$valid" --checkpoint last --json > "$out/$name/eval.json"
  python3 - "$out/$name" "$name" <<'PY'
import json, sys
run, name = sys.argv[1], sys.argv[2]
e = json.load(open(f"{run}/eval.json"))
minutes = int(open(f"{run}/train-seconds.txt").read()) / 60
print(f"{name:<28} {e['bits_per_dim']:.4f} ± {e['stderr_bits_per_dim']:.4f} bits/dim on {e['images']} images, {minutes:.1f} min")
PY
}
run pixel-cnn-softmax --model pixel-cnn
run pixel-cnn-mixture --model pixel-cnn --output mixture --components 10
run gated-pixel-cnn-mixture --model gated-pixel-cnn --output mixture --components 10
