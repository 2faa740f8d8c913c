#!/usr/bin/env bash
# pixelrnn -> PyTorch: trains each benchmark spec briefly with pixelrnn, exports the weights
# (M1-M4 in the PyTorch twin's layout; the successors' M5, M6 and m5c in pixelrnn's native
# layout), loads them into the repository's twin (python/pixelrnn/twin.py) strictly, and
# compares the per-image NLL both compute on the same test images (256 by default). Prints one
# line per spec with the largest relative difference.
#
#   scripts/twin-check.sh [STEPS] [IMAGES]
#
# Specs: m1-m4 (the paper's models), m5 (Gated PixelCNN), m6 (M2 with a logistic mixture of 10)
# and m5c (a small class-conditional Gated PixelCNN with a mixture of 5 and skip connections,
# on CIFAR-10: eval does not save labels, so twin_check.py reads them from the dataset files
# and checks that the images there are the saved ones).
#
# Environment: TORCH_VENV (default .venv-torch, made with scripts/setup-torch.sh if missing),
# DATA (a folder with mnist/ and cifar10/, default ../shared/data), SPECS (default
# "m1 m2 m3 m4 m5 m6 m5c").
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-50}
count=${2:-256}
data=${DATA:-../shared/data}
venv=${TORCH_VENV:-.venv-torch}
specs=${SPECS:-m1 m2 m3 m4 m5 m6 m5c}
[[ -x $venv/bin/python ]] || scripts/setup-torch.sh "$venv"
cargo build --release -q -p pixelrnn-cli
bin=target/release/pixelrnn
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mnist=(--dataset binarized-mnist --data-dir "$data/mnist")
cifar=(--dataset cifar10 --data-dir "$data/cifar10" --batch-size 16)
for spec in $specs; do
  run=$tmp/$spec
  layout=native labels=()
  case $spec in
    m1) flags=("${mnist[@]}" --model pixel-cnn --layers 7 --hidden 32 --output-hidden 64 --no-skip) layout=pytorch ;;
    m2) flags=("${cifar[@]}" --model pixel-cnn --layers 7 --hidden 64 --output-hidden 128 --no-skip) layout=pytorch ;;
    m3) flags=("${mnist[@]}" --model row-lstm --layers 1 --hidden 32 --output-hidden 64 --zero-initial-state --no-skip) layout=pytorch ;;
    m4) flags=("${mnist[@]}" --model diagonal-bilstm --layers 1 --hidden 16 --output-hidden 32 --diagonal-padding bias --no-skip) layout=pytorch ;;
    m5) flags=("${cifar[@]}" --model gated-pixel-cnn --layers 7 --hidden 32 --output-hidden 64 --no-skip) ;;
    m6) flags=("${cifar[@]}" --model pixel-cnn --layers 7 --hidden 64 --output-hidden 128 --output mixture --components 10 --no-skip) ;;
    m5c) flags=("${cifar[@]}" --model gated-pixel-cnn --layers 3 --hidden 16 --output-hidden 32 --output mixture --components 5 --conditional)
      labels=(--labels-from "$run") ;;
    *) echo "twin-check: unknown spec $spec (m1 m2 m3 m4 m5 m6 m5c)" >&2; exit 2 ;;
  esac
  split=test; [[ ${flags[1]} == cifar10 ]] && split=valid   # the shared CIFAR-10 folder has no test batch
  "$bin" train "${flags[@]}" --steps "$steps" --valid-every 0 --valid-limit 64 --out "$run" --quiet 2> /dev/null
  "$bin" export --run "$run" --checkpoint last --layout "$layout" --out "$run.safetensors" 2> /dev/null
  "$bin" eval --run "$run" --checkpoint last --split "$split" --limit "$count" --json --per-image --save-images "$run.images" > "$run.ours.json"
  "$venv/bin/python" scripts/twin_check.py --spec "$spec" --weights "$run.safetensors" --images "$run.images" \
    --split "$split" ${labels[@]+"${labels[@]}"} > "$run.twin.json"
  python3 - "$spec" "$layout" "$run.ours.json" "$run.twin.json" <<'PY'
import json, sys
spec, layout, ours, twin = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
a, b = ours["per_image_nats"], twin["per_image_nats"]
assert len(a) == len(b), (len(a), len(b))
rel = max(abs(x - y) / abs(y) for x, y in zip(a, b))
mean = lambda v: sum(v) / len(v)
line = f"{spec}: {len(a)} {ours['split']} images ({layout} layout), pixelrnn {mean(a):.4f} nats/image, PyTorch twin {mean(b):.4f}, largest relative difference per image {rel:.2e}"
if "per_image_nats_next_class" in twin:
    moved = mean([abs(x - y) for x, y in zip(twin["per_image_nats_next_class"], b)])
    line += f"; the next class's label moves the twin's NLL by {moved:.4f} nats/image on average"
print(line)
PY
done
