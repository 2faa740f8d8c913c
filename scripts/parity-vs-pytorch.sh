#!/usr/bin/env bash
# Learning parity with the repository's PyTorch twin (python/pixelrnn/twin.py: the benchmark
# specs M1-M4).
#
#   scripts/parity-vs-pytorch.sh [SPECS...]          (default: m1 m2 m3 m4)
#
# Part 1, exact (always): both sides start from the same weights (the twin's PyTorch init,
# through safetensors: train --init-weights) and take the same batches in the same order
# (train --batch-order), with the same Adam (lr 1e-3, epsilon 1e-8). Reported per spec: the
# step-1 loss and the relative difference of every parameter's gradient (train
# --gradients-out), and the per-step losses of the first 20 steps.
#
# Part 2, learning (LONG_STEPS > 0): for each of SEEDS, the twin (its init, its
# epsilon) and pixelrnn with its own defaults (its init, Adam epsilon, and padding / initial
# state as VARIANT says) train LONG_STEPS steps on the same batches; both test NLLs on the
# 10,000 test images (m2: bits/dim on the 5,000 validation images) go to RESULTS_DIR/long.jsonl, and a summary line per spec gives the means
# and spreads.
#
# Environment: PIXELRNN_BIN (a built binary; default: build target/release/pixelrnn),
# LONG_STEPS (default 0), SEEDS (default "1 2 3"), THREADS per run (default 1; part 2 runs
# JOBS runs at a time, default 2), RESULTS_DIR (default target/parity), TORCH_VENV,
# DATA; OURS_FLAGS: extra pixelrnn train flags for part 2 (e.g. "--epsilon 1e-8");
# LR_DECAY (default 1): both sides' learning rate is 1e-3 * LR_DECAY^k at step k (pixelrnn's
# --lr-decay; in both parts, so part 1 checks that the schedules agree). An annealed rate ends
# each run near a point rather than wherever the last steps of a constant rate threw it, which
# takes the final-snapshot noise out of part 2's comparison. SAME_INIT=1: in part 2 pixelrnn
# also starts from the twin's initial weights, with the twin's epsilon and layer variants, so
# that each seed is a paired comparison of the training alone.
# LAST_K (default 100): each part-2 row also gives both sides' mean loss over the last K steps,
# in nats/image (bits/dim for m2). Within the first epoch every batch is images that side has
# not trained on yet, and the loss of step k is taken before its update, so that mean is a
# held-out estimate of the NLL of the models at steps N-K+1..N (progressive validation): on
# the same images for both sides (the image-sampling noise cancels in the difference) and
# averaged over K snapshots (the last update's noise averages out). The summary gives its
# paired difference beside the test NLL's. It is held out only while no image of the batch
# order repeats (N x batch within the training split: 1,562 steps for the binary specs, 2,812
# for m2); the row's last_k_held_out says whether it was.
set -euo pipefail
cd "$(dirname "$0")/.."
specs=("$@")
[[ ${#specs[@]} -gt 0 ]] || specs=(m1 m2 m3 m4)
data=${DATA:-../shared/data}
venv=${TORCH_VENV:-.venv-torch}
long_steps=${LONG_STEPS:-0}
lr_decay=${LR_DECAY:-1}
same_init=${SAME_INIT:-0}
seeds=${SEEDS:-1 2 3}
threads=${THREADS:-1}
last_k=${LAST_K:-100}
jobs=${JOBS:-2}
out=${RESULTS_DIR:-target/parity}
[[ -x $venv/bin/python ]] || scripts/setup-torch.sh "$venv"
"$venv/bin/python" -c "import safetensors" 2> /dev/null || "$venv/bin/pip" install -q safetensors
# PIXELRNN_BIN: a built binary to use (e.g. a copy, so that target/ can be rebuilt meanwhile).
if [[ -n ${PIXELRNN_BIN:-} ]]; then
  bin=$PIXELRNN_BIN
else
  cargo build --release -q -p pixelrnn-cli
  bin=target/release/pixelrnn
fi
py() { "$venv/bin/python" scripts/parity_twin.py "$@"; }
mkdir -p "$out"
if [[ ! -f $out/mnist/images.npz ]]; then py data --mnist-dir "$data/mnist" --out "$out/mnist"; fi

# The twin's model of each spec, as pixelrnn train flags.
flags_of() {
  case $1 in
    m1) echo --dataset binarized-mnist --data-dir "$out/mnist" --model pixel-cnn --layers 7 --hidden 32 --output-hidden 64 --batch-size 32 ;;
    m2) echo --dataset cifar10 --data-dir "$data/cifar10" --model pixel-cnn --layers 7 --hidden 64 --output-hidden 128 --batch-size 16 ;;
    m3) echo --dataset binarized-mnist --data-dir "$out/mnist" --model row-lstm --layers 1 --hidden 32 --output-hidden 64 --batch-size 32 ;;
    m4) echo --dataset binarized-mnist --data-dir "$out/mnist" --model diagonal-bilstm --layers 1 --hidden 16 --output-hidden 32 --batch-size 32 ;;
  esac
}
# What makes pixelrnn's model the twin's exactly (it differs on purpose by default).
twin_flags_of() {
  case $1 in
    m3) echo --zero-initial-state ;;
    m4) echo --diagonal-padding bias ;;
  esac
}
data_of() { if [[ $1 == m2 ]]; then echo "$data/cifar10"; else echo "$out/mnist"; fi; }

for spec in "${specs[@]}"; do
  s=$out/$spec
  py init --spec "$spec" --seed 0 --out "$s.init.safetensors"
  py order --spec "$spec" --seed 0 --steps 20 --out "$s.order.txt"
  # shellcheck disable=SC2046
  "$bin" train $(flags_of "$spec") $(twin_flags_of "$spec") --no-verify --no-skip --steps 20 --valid-every 0 --valid-limit 16 \
    --checkpoint-every 0 --epsilon 1e-8 --lr-decay "$lr_decay" --init-weights "$s.init.safetensors" --batch-order "$s.order.txt" \
    --gradients-out "$s.ours.grads" --gradients-layout pytorch --out "$s.run" --overwrite --quiet 2> /dev/null
  py train --spec "$spec" --data "$(data_of "$spec")" --weights "$s.init.safetensors" --order "$s.order.txt" --steps 20 \
    --json "$s.twin.json" --grads-out "$s.twin.grads" --test-limit 16 --threads 2 --lr-decay "$lr_decay"
  py compare --spec "$spec" --ours-grads "$s.ours.grads" --twin-grads "$s.twin.grads" \
    --ours-losses "$s.run/metrics.jsonl" --twin-json "$s.twin.json" > "$s.exact.json"
  python3 - "$s.exact.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['spec']} exact: step-1 loss pixelrnn {r['step1_loss_ours']:.6f} twin {r['step1_loss_twin']:.6f}; "
      f"gradients: worst relative difference {r['grad_worst_relative_difference']:.2e} over {len(r['gradients'])} tensors; "
      f"losses of {r['steps_compared']} steps: worst relative difference {r['loss_worst_relative_difference']:.2e}")
PY
done

[[ $long_steps -gt 0 ]] || exit 0
# One run of part 2: `long_job twin|ours SEED` (spec and split from the environment).
long_job() {
  local side=$1 seed=$2 s=$out/$spec-long-$2 paired=()
  if [[ $side == twin ]]; then
    py train --spec "$spec" --data "$(data_of "$spec")" --weights "$s.init.safetensors" --order "$s.order.txt" \
      --steps "$long_steps" --json "$s.twin.json" --threads "$threads" --lr-decay "$lr_decay"
    return
  fi
  [[ $same_init == 1 ]] && read -r -a paired <<< "--init-weights $s.init.safetensors --epsilon 1e-8 $(twin_flags_of "$spec")"
  # shellcheck disable=SC2046,SC2086
  RAYON_NUM_THREADS=$threads "$bin" train $(flags_of "$spec") --no-skip --steps "$long_steps" --seed "$seed" \
    --valid-every 0 --valid-limit 16 --checkpoint-every 0 --batch-order "$s.order.txt" --no-verify \
    --lr-decay "$lr_decay" "${paired[@]}" ${OURS_FLAGS:-} --out "$s.run" --overwrite --quiet 2> /dev/null &&
    RAYON_NUM_THREADS=$threads "$bin" eval --run "$s.run" --checkpoint last --split "$split" --json > "$s.ours.json"
}
export -f long_job py flags_of twin_flags_of data_of
export out bin data venv long_steps lr_decay same_init threads OURS_FLAGS
for spec in "${specs[@]}"; do
  # m2's held-out images are the last 5,000 training images (pixelrnn's valid split; the
  # official test batch is not among the shared data), scored in bits/dim.
  split=test; [[ $spec == m2 ]] && split=valid
  for seed in $seeds; do
    s=$out/$spec-long-$seed
    py init --spec "$spec" --seed "$seed" --out "$s.init.safetensors"
    py order --spec "$spec" --seed "$seed" --steps "$long_steps" --out "$s.order.txt"
  done
  # Every seed's two runs are independent jobs (the twin: train and score; pixelrnn: train, then
  # score), THREADS threads each, JOBS at a time (default 2: one core each here), the twins
  # first since they take longer; the rows are written once all have finished.
  export spec split
  for seed in $seeds; do printf 'twin %s\n' "$seed"; done > "$out/$spec-jobs.txt"
  for seed in $seeds; do printf 'ours %s\n' "$seed"; done >> "$out/$spec-jobs.txt"
  xargs -P "$jobs" -L 1 bash -c 'long_job "$@"' _ < "$out/$spec-jobs.txt"
  for seed in $seeds; do
    s=$out/$spec-long-$seed
    python3 - "$spec" "$seed" "$long_steps" "$s.ours.json" "$s.twin.json" "${OURS_FLAGS:-}" "$lr_decay" "$same_init" \
      "$s.run/metrics.jsonl" "$last_k" "$s.order.txt" >> "$out/long.jsonl" <<'PY'
import json, math, sys
spec, seed, steps, ours, twin, flags, lr_decay, same_init, metrics, last_k, order = sys.argv[1:]
o, t = json.load(open(ours)), json.load(open(twin))
row = {"spec": spec, "seed": int(seed), "steps": int(steps), "ours_flags": flags,
       "pixelrnn_test_nats": o["nll_nats"], "twin_test_nats": t["test_nats"], "test_images": t["test_images"]}
if spec == "m2":
    row.update(split="valid", pixelrnn_bits_per_dim=o["bits_per_dim"], twin_bits_per_dim=t["test_bits_per_dim"])
# The held-out estimate of the last K steps (see LAST_K above), from both sides' per-step losses.
ours_losses = [e["loss_nats"] for e in map(json.loads, open(metrics)) if e.get("event") == "step"]
twin_losses = t["losses"]
k = int(last_k)
if k > 0:
    if len(ours_losses) != int(steps) or len(twin_losses) != int(steps):
        sys.exit(f"{metrics}: expected {steps} step losses on both sides, found {len(ours_losses)} (pixelrnn) "
                 f"and {len(twin_losses)} (twin)")
    k = min(k, int(steps))
    # The row's unit (bits/dim for m2) from the twin's own conversion; held out while no image
    # of the batch order repeats.
    scale = t["test_bits_per_dim"] / t["test_nats"] if spec == "m2" else 1.0
    indices = [i for line in open(order) for i in line.split()]
    row.update(last_k_steps=k, last_k_held_out=len(set(indices)) == len(indices),
               pixelrnn_last_k=sum(ours_losses[-k:]) / k * scale, twin_last_k=sum(twin_losses[-k:]) / k * scale)
# Written only when they differ from the defaults, so that earlier rows read the same.
if float(lr_decay) != 1.0:
    row["lr_decay"] = float(lr_decay)
if same_init == "1":
    row["same_init"] = True
print(json.dumps(row))
PY
    tail -n 1 "$out/long.jsonl"
  done
  python3 - "$spec" "$long_steps" "$out/long.jsonl" "${OURS_FLAGS:-}" "$lr_decay" "$same_init" "$last_k" <<'PY'
import json, math, statistics as st, sys
spec, steps, path, flags = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lr_decay, same_init = float(sys.argv[5]), sys.argv[6] == "1"
rows = [r for r in map(json.loads, open(path)) if r["spec"] == spec and r["steps"] == steps and r["ours_flags"] == flags
        and r.get("lr_decay", 1.0) == lr_decay and r.get("same_init", False) == same_init]
unit, key = ("bits/dim", "bits_per_dim") if spec == "m2" else ("nats", "test_nats")
ours = [r["pixelrnn_" + key] for r in rows]
twin = [r["twin_" + key] for r in rows]
sd = lambda v: st.stdev(v) if len(v) > 1 else 0.0
# 97.5% quantiles of Student's t for 1..10 degrees of freedom (then 2.0): a 95% interval of a
# mean difference over n seeds is mean +- t(n-1) * standard error.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]
def interval(d):
    if len(d) < 2:
        return ""
    half = (T975[len(d) - 2] if len(d) - 2 < len(T975) else 2.0) * sd(d) / math.sqrt(len(d))
    return f"; 95% interval {st.mean(d) - half:+.4f} to {st.mean(d) + half:+.4f}"
setting = ", ".join(x for x in [flags, f"lr decay {lr_decay:g}" if lr_decay != 1.0 else "", "same init" if same_init else ""] if x)
diffs = [a - b for a, b in zip(ours, twin)]
print(f"{spec} learning, {steps} steps, {len(rows)} seeds{' (' + setting + ')' if setting else ''}: "
      f"pixelrnn {st.mean(ours):.4f} +- {sd(ours):.4f} {unit}, twin {st.mean(twin):.4f} +- {sd(twin):.4f}, "
      f"difference {st.mean(diffs):+.4f} (per seed {', '.join(f'{d:+.4f}' for d in diffs)}; "
      f"standard error {sd(diffs) / math.sqrt(len(diffs)):.4f}{interval(diffs)})")
k = int(sys.argv[7])
held = [r for r in rows if r.get("last_k_steps") == min(k, steps)]
if k > 0 and held:
    d = [r["pixelrnn_last_k"] - r["twin_last_k"] for r in held]
    images = "held-out images" if all(r.get("last_k_held_out", True) for r in held) else "some images already trained on"
    print(f"{spec} mean loss of the last {min(k, steps)} steps ({images}), {len(held)} seeds: "
          f"pixelrnn {st.mean(r['pixelrnn_last_k'] for r in held):.4f}, twin {st.mean(r['twin_last_k'] for r in held):.4f} {unit}, "
          f"difference {st.mean(d):+.4f} (per seed {', '.join(f'{x:+.4f}' for x in d)}; standard error {sd(d) / math.sqrt(len(d)):.4f}{interval(d)})")
PY
done
