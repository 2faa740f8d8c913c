#!/usr/bin/env bash
# pixelrnn -> PyTorch: trains each benchmark spec M1-M4 briefly with pixelrnn, exports the
# weights in the PyTorch twin's layout, loads them into the repository's twin (python/pixelrnn/twin.py) strictly, and
# compares the per-image NLL both compute on the same test images (256 by default). Prints one
# line per spec with the largest relative difference.
#
#   scripts/twin-check.sh [STEPS] [IMAGES]
#
# Environment: TORCH_VENV (default .venv-torch, made with scripts/setup-torch.sh if missing),
# DATA (a folder with mnist/ and cifar10/, default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-50}
count=${2:-256}
data=${DATA:-../shared/data}
venv=${TORCH_VENV:-.venv-torch}
[[ -x $venv/bin/python ]] || scripts/setup-torch.sh "$venv"
cargo build --release -q -p pixelrnn-cli
bin=target/release/pixelrnn
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for spec in m1 m2 m3 m4; do
  case $spec in
    m1) flags=(--dataset binarized-mnist --data-dir "$data/mnist" --model pixel-cnn --layers 7 --hidden 32 --output-hidden 64) ;;
    m2) flags=(--dataset cifar10 --data-dir "$data/cifar10" --model pixel-cnn --layers 7 --hidden 64 --output-hidden 128 --batch-size 16) ;;
    m3) flags=(--dataset binarized-mnist --data-dir "$data/mnist" --model row-lstm --layers 1 --hidden 32 --output-hidden 64 --zero-initial-state) ;;
    m4) flags=(--dataset binarized-mnist --data-dir "$data/mnist" --model diagonal-bilstm --layers 1 --hidden 16 --output-hidden 32 --diagonal-padding bias) ;;
  esac
  split=test; [[ $spec == m2 ]] && split=valid   # the shared CIFAR-10 folder has no test batch
  run=$tmp/$spec
  "$bin" train "${flags[@]}" --no-skip --steps "$steps" --valid-every 0 --valid-limit 64 --out "$run" --quiet 2> /dev/null
  "$bin" export --run "$run" --checkpoint last --layout pytorch --out "$run.safetensors" 2> /dev/null
  "$bin" eval --run "$run" --checkpoint last --split "$split" --limit "$count" --json --per-image --save-images "$run.images" > "$run.ours.json"
  "$venv/bin/python" scripts/twin_check.py --spec "$spec" --weights "$run.safetensors" --images "$run.images" > "$run.twin.json"
  python3 - "$spec" "$run.ours.json" "$run.twin.json" <<'PY'
import json, sys
spec, ours, twin = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
a, b = ours["per_image_nats"], twin["per_image_nats"]
assert len(a) == len(b), (len(a), len(b))
rel = max(abs(x - y) / abs(y) for x, y in zip(a, b))
mean = lambda v: sum(v) / len(v)
print(f"{spec}: {len(a)} {ours['split']} images, pixelrnn {mean(a):.4f} nats/image, PyTorch twin {mean(b):.4f}, largest relative difference per image {rel:.2e}")
PY
done
