#!/usr/bin/env bash
# pixelrnn against a real peer, side by side on this machine, for the same wall-clock time:
# PixelCNN++'s PyTorch implementation (github.com/pclucas14/pixel-cnn-pp: 1 residual block per
# stage, 32 filters, 5 mixture components, batch 16, Adam 2e-4, as issue 30 sets it; driven by
# scripts/peer_pixelcnnpp.py, which says what it patches in a copy of the peer's sources) and
# pixelrnn models (`train --time-limit`), each trained for SECONDS on THREADS threads on the
# same CIFAR-10 training images (the first 45,000), one after the other, then scored on the
# same held-out images (the last 5,000 training images: pixelrnn's validation split, saved by
# `eval --save-images` and read by the peer byte for byte). Prints a table (bits/dim ± s.e.,
# parameters, steps) and writes OUT_DIR/results.json.
#
#   scripts/vs-pixelcnnpp.sh PEER_CHECKOUT CIFAR_DIR [OUT_DIR]
#
# PEER_CHECKOUT: `git clone https://github.com/pclucas14/pixel-cnn-pp` (its model.py, layers.py,
# utils.py; nothing of it is in this repository). CIFAR_DIR: cifar-10-batches-bin's files.
# Environment: SECONDS_EACH (600), THREADS (2), VALID (5000 images scored), MODELS (the pixelrnn
# models, names from the list below; default all), PEER (1: also run the peer), PIXELRNN (the
# binary; default target/release/pixelrnn, built first), TORCH_VENV (default .venv-torch, made by
# scripts/setup-torch.sh if missing). Run it on an otherwise idle machine: it times wall-clock.
set -euo pipefail
cd "$(dirname "$0")/.."
peer=${1:?usage: scripts/vs-pixelcnnpp.sh PEER_CHECKOUT CIFAR_DIR [OUT_DIR]}
data=${2:?usage: scripts/vs-pixelcnnpp.sh PEER_CHECKOUT CIFAR_DIR [OUT_DIR]}
out=${3:-experiments/vs-pixelcnnpp}
seconds=${SECONDS_EACH:-600}
threads=${THREADS:-2}
valid=${VALID:-5000}
venv=${TORCH_VENV:-.venv-torch}
bin=${PIXELRNN:-target/release/pixelrnn}

# name|flags: the pixelrnn models (every one PixelCNN, batch 16, seed 1).
declare -A flags=(
  [small-softmax]="--preset small"
  [small-mixture]="--preset small --output mixture --components 5 --lr 0.002"
  [mid-mixture]="--layers 4 --hidden 32 --output-hidden 128 --output mixture --components 5 --lr 0.002"
  [peer-size-mixture]="--layers 7 --hidden 64 --output-hidden 128 --output mixture --components 5 --lr 0.002"
)
models=${MODELS:-small-softmax small-mixture mid-mixture peer-size-mixture}

[[ -x $venv/bin/python ]] || scripts/setup-torch.sh "$venv"
[[ -n ${PIXELRNN:-} ]] || cargo build --release -q -p pixelrnn-cli
mkdir -p "$out"
heldout=$out/heldout.u8
for name in $models; do
  [[ -n ${flags[$name]:-} ]] || { echo "MODELS: unknown model $name (known: ${!flags[*]})" >&2; exit 2; }
  run=$out/$name
  # shellcheck disable=SC2086
  RAYON_NUM_THREADS=$threads "$bin" train --dataset cifar10 --data-dir "$data" --no-verify --model pixel-cnn \
    ${flags[$name]} --batch-size 16 --seed 1 --steps 100000000 --valid-every 0 --checkpoint-every 0 \
    --log-every 100 --time-limit "$seconds" --out "$run" --overwrite --quiet
  RAYON_NUM_THREADS=$threads "$bin" eval --run "$run" --checkpoint last --split valid --limit "$valid" --json \
    --save-images "$heldout" > "$run/eval.json"
  "$bin" export --run "$run" --checkpoint last --out "$run/weights.safetensors" 2> /dev/null
done
if [[ ${PEER:-1} == 1 ]]; then
  if [[ ! -f $heldout ]]; then
    # No pixelrnn model ran: the held-out images from a throwaway run.
    "$bin" train --dataset cifar10 --data-dir "$data" --no-verify --model pixel-cnn --preset tiny --steps 1 \
      --valid-every 0 --out "$out/images" --overwrite --quiet
    "$bin" eval --run "$out/images" --split valid --limit "$valid" --save-images "$heldout" > /dev/null
  fi
  OMP_NUM_THREADS=$threads "$venv/bin/python" scripts/peer_pixelcnnpp.py --peer "$peer" --cifar "$data" \
    --heldout "$heldout" --seconds "$seconds" --threads "$threads" 2> "$out/peer.log" > "$out/peer.json"
fi
python3 - "$out" "$models" <<'PY'
import json, math, os, struct, sys
out, models = sys.argv[1], sys.argv[2].split()
rows = []
def parameters(path):
    data = open(path, "rb").read()
    header = json.loads(data[8 : 8 + struct.unpack("<Q", data[:8])[0]])
    return sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
for name in models:
    e = json.load(open(f"{out}/{name}/eval.json"))
    steps = [json.loads(l) for l in open(f"{out}/{name}/metrics.jsonl") if '"checkpoint"' in l][-1]["step"]
    rows.append({"model": f"pixelrnn {name}", "parameters": parameters(f"{out}/{name}/weights.safetensors"),
                 "steps": steps, "images": e["images"], "bits_per_dim": e["bits_per_dim"],
                 "stderr_bits_per_dim": e["stderr_bits_per_dim"]})
if os.path.exists(f"{out}/peer.json"):
    p = json.load(open(f"{out}/peer.json"))
    rows.append({"model": "pixel-cnn-pp (pclucas14)", "parameters": p["parameters"], "steps": p["steps"],
                 "images": p["images"], "bits_per_dim": p["bits_per_dim"], "stderr_bits_per_dim": p["stderr_bits_per_dim"]})
json.dump(rows, open(f"{out}/results.json", "w"), indent=1)
print(f"{'model':<34} {'parameters':>10} {'steps':>7} {'bits/dim':>9}  ± s.e. (held-out images)")
for r in rows:
    print(f"{r['model']:<34} {r['parameters']:>10,} {r['steps']:>7} {r['bits_per_dim']:>9.4f}  ± {r['stderr_bits_per_dim']:.4f} ({r['images']})")
PY
