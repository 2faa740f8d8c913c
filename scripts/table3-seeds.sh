#!/usr/bin/env bash
# Rows of the small-scale Table 3 (Row LSTM, h=16, d=64, residual and skip, batch 16, 1,000
# steps on CIFAR-10) with other seeds, to tell depth from the draw of the initial weights.
#
#   scripts/table3-seeds.sh DEPTH:SEED [DEPTH:SEED...]     e.g. 2:2 3:2 2:3 3:3
#
# Each run trains on one thread into target/seeds/depth-D-seed-S and is scored on the held-out
# 5,000 images; prints "DEPTH SEED {eval json}". Environment: BIN (target/release/pixelrnn),
# CIFAR (../shared/data/cifar10).
set -euo pipefail
bin=$(realpath "${BIN:-$(dirname "$0")/../target/release/pixelrnn}")
cifar=$(realpath "${CIFAR:-$(dirname "$0")/../../shared/data/cifar10}")
cd "$(dirname "$0")/.."
mkdir -p target/seeds
for spec in "$@"; do
  d=${spec%:*} s=${spec#*:}
  run=target/seeds/depth-$d-seed-$s
  RAYON_NUM_THREADS=1 "$bin" train --model row-lstm --dataset cifar10 --data-dir "$cifar" --no-verify \
    --layers "$d" --hidden 16 --output-hidden 64 --batch-size 16 --steps 1000 --seed "$s" --valid-every 0 \
    --out "$run" --overwrite --quiet > /dev/null
  RAYON_NUM_THREADS=1 "$bin" eval --run "$run" --checkpoint last --split valid --json > "$run.json"
  echo "$d $s $(cat "$run.json")"
done
