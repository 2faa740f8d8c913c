#!/usr/bin/env bash
# Quality per wall-clock against PyTorch: trains the same model with pixelrnn and with the
# repository's PyTorch twin (python/bench/twin_quality.py) for the same number of seconds, concurrently,
# one core each, on the very same binarized MNIST images, then reports both test NLLs (nats,
# all 10,000 test images) and the steps each side took.
#
#   scripts/quality-vs-pytorch.sh [SECONDS] [SPEC]      (default: 1200 m1; SPEC m1, m2, m3 or m4)
#
# m2 (the CIFAR-10 PixelCNN, batch 16) trains on CIFAR-10's first 45,000 training images and
# is scored in bits/dim on the last 5,000 (the official test batch is not among the data here);
# its twin is scripts/parity_twin.py's (the twin's model, its own initialisation, seeded
# epoch shuffles), since twin_quality.py covers the binary specs only.
#
# pixelrnn trains with its defaults for the spec's model (Adam 1e-3, batch 32) and is stopped
# by SIGTERM at the budget (it saves its checkpoint; the budget includes its data loading, a
# few seconds); the twin stops itself (its clock starts after loading).
# Neither side evaluates inside the budget. One JSON line per side goes to
# RESULTS_DIR/quality.jsonl (default target/quality), then a summary line.
# Environment: TORCH_VENV, DATA, SEED (default 0; both sides, and each row says it),
# RESULTS_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-1200}
spec=${2:-m1}
data=${DATA:-../shared/data}
venv=${TORCH_VENV:-.venv-torch}
seed=${SEED:-0}
out=${RESULTS_DIR:-target/quality}
[[ -x $venv/bin/python ]] || scripts/setup-torch.sh "$venv"
"$venv/bin/python" -c "import safetensors" 2> /dev/null || "$venv/bin/pip" install -q safetensors
cargo build --release -q -p pixelrnn-cli
bin=target/release/pixelrnn
mkdir -p "$out"
# The images both sides use: binarized once (Bernoulli(v/255), numpy seeds 0 and 1, as
# twin_quality.py --mnist-dir does), as .amat files for pixelrnn and an .npz for the twin.
[[ -f $out/mnist/images.npz ]] || "$venv/bin/python" scripts/parity_twin.py data --mnist-dir "$data/mnist" --out "$out/mnist"
batch=32
split=test
data_flags=(--dataset binarized-mnist --data-dir "$out/mnist")
case $spec in
  m1) flags=(--model pixel-cnn --layers 7 --hidden 32 --output-hidden 64) ;;
  m2) flags=(--model pixel-cnn --layers 7 --hidden 64 --output-hidden 128) batch=16 split=valid
      data_flags=(--dataset cifar10 --data-dir "$data/cifar10") ;;
  m3) flags=(--model row-lstm --layers 1 --hidden 32 --output-hidden 64) ;;
  m4) flags=(--model diagonal-bilstm --layers 1 --hidden 16 --output-hidden 32) ;;
  *) echo "SPEC must be m1, m2, m3 or m4" >&2; exit 2 ;;
esac
run=$out/$spec-$seconds-$seed
if [[ $spec == m2 ]]; then
  # The twin's initial weights and an order of batches longer than it can take in the budget.
  "$venv/bin/python" scripts/parity_twin.py init --spec m2 --seed "$seed" --out "$run.init.safetensors"
  "$venv/bin/python" scripts/parity_twin.py order --spec m2 --seed "$seed" --steps 20000 --out "$run.order.txt"
fi
set +e
RAYON_NUM_THREADS=1 timeout -s TERM "$seconds" "$bin" train "${data_flags[@]}" --no-verify \
  "${flags[@]}" --no-skip --batch-size "$batch" --steps 100000000 --seed "$seed" --valid-every 0 --valid-limit 16 \
  --checkpoint-every 0 --out "$run" --overwrite --quiet 2> "$run.log" &
ours=$!
if [[ $spec == m2 ]]; then
  "$venv/bin/python" scripts/parity_twin.py train --spec m2 --data "$data/cifar10" --weights "$run.init.safetensors" \
    --order "$run.order.txt" --steps 20000 --seconds "$seconds" --json "$run.twin.json" --threads 1
  python3 - "$run.twin.json" "$seconds" > "$run.twin.jsonl" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
print(json.dumps({"framework": "pytorch", "model": "m2", "seconds": int(sys.argv[2]), "steps": t["steps"],
                  "images_seen": t["steps"] * 16, "test_images": t["test_images"], "test_nats": round(t["test_nats"], 3),
                  "test_bits_per_dim": round(t["test_bits_per_dim"], 4), "split": "valid"}))
PY
else
  "$venv/bin/python" python/bench/twin_quality.py --model "$spec" --seconds "$seconds" --threads 1 --seed "$seed" \
    --eval-every 1e12 --npz "$out/mnist/images.npz" > "$run.twin.jsonl"
fi
wait $ours
code=$?
set -e
[[ $code == 124 || $code == 143 || $code == 0 ]] || { echo "pixelrnn train failed ($code): $(tail -1 "$run.log")" >&2; exit 1; }
RAYON_NUM_THREADS=2 "$bin" eval --run "$run" --checkpoint last --split "$split" --json > "$run.ours.json"
python3 - "$spec" "$seconds" "$run" "$out/quality.jsonl" "$batch" "$seed" <<'PY'
import json, sys
spec, seconds, run, log, batch, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
ours = json.load(open(run + ".ours.json"))
steps = max(json.loads(l)["step"] for l in open(run + "/metrics.jsonl") if '"event":"step"' in l)
twin = json.loads(open(run + ".twin.jsonl").read().strip().splitlines()[-1])
rows = [{"framework": "pixelrnn", "model": spec, "seconds": seconds, "steps": steps, "images_seen": steps * batch,
         "test_images": ours["images"], "test_nats": round(ours["nll_nats"], 3)}, twin]
if spec == "m2":
    rows[0].update(test_bits_per_dim=round(ours["bits_per_dim"], 4), split="valid")
for r in rows:
    r["seed"] = seed
with open(log, "a") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
key, unit = ("test_bits_per_dim", "bits/dim") if spec == "m2" else ("test_nats", "nats")
print(f"{spec}, {seconds} s on one core each: pixelrnn {rows[0][key]:.4f} {unit} after {steps} steps; "
      f"PyTorch {twin[key]:.4f} {unit} after {twin['steps']} steps")
PY
