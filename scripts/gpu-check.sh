#!/usr/bin/env bash
# The GPU check of issue 7, one prepared script for a machine with a GPU (about 8 minutes on
# an H200). Needs what scripts/gpu-pack.sh put in .gpu/ and .gl/ (carry both). It
#   1. installs the carried Vulkan loader if the machine has none;
#   2. runs the GPU tests: CPU == GPU NLL and gradients within 1e-4 relative, and the
#      causality tests on the GPU (PIXELRNN_TEST_DEVICE);
#   3. benchmarks M1-M4 train / infer / sample with `pixelrnn bench --device vulkan` and the
#      PyTorch reference with `--device cuda` on the same GPU, interleaved, at batch sizes that
#      fill the card;
#   4. prints the ratio table last.
# Results go to $OUT (or ./gpu-results/): gpu-check.jsonl (every measurement), gpu-check.log.
#
# Environment: DEVICE (vulkan), ROUNDS (2), STEPS (10), WARMUP (3), SPECS ("m1 m2 m3 m4"),
# MODES ("train infer sample"), BATCH_m1.. (per-spec batch), SAMPLE_BATCH (16),
# TORCH_DEVICE (cuda; "none" skips the reference), TORCH_PYTHON (python3), SKIP_TESTS (0).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-results}
mkdir -p "$out"
log=$out/gpu-check.log
results=$out/gpu-check.jsonl
: > "$results"
exec > >(tee "$log") 2>&1
device=${DEVICE:-vulkan}
rounds=${ROUNDS:-2}
steps=${STEPS:-10}
warmup=${WARMUP:-3}
specs=${SPECS:-m1 m2 m3 m4}
modes=${MODES-train infer sample}
torch_device=${TORCH_DEVICE:-cuda}
declare -A batch=([m1]=${BATCH_m1:-256} [m2]=${BATCH_m2:-64} [m3]=${BATCH_m3:-128} [m4]=${BATCH_m4:-128})
sample_batch=${SAMPLE_BATCH:-16}
started=$(date +%s)

# 1. The Vulkan loader and NVIDIA's driver manifest.
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[[ -z ${VK_DRIVER_FILES:-} && -f $nvidia_icd ]] && export VK_DRIVER_FILES=$nvidia_icd
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
bin=$(mktemp -d)
gunzip -c .gpu/pixelrnn.gz > "$bin/pixelrnn" && gunzip -c .gpu/pixelrnn-gpu-tests.gz > "$bin/gpu-tests" || exit 1
chmod +x "$bin/pixelrnn" "$bin/gpu-tests"
echo "date: $(date -u +%FT%TZ)  git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# 2. Tests on the GPU.
status=0
if [[ ${SKIP_TESTS:-0} != 1 ]]; then
  echo "== GPU tests"
  PIXELRNN_REQUIRE_GPU=1 PIXELRNN_TEST_DEVICE=$device timeout 300 "$bin/gpu-tests" --test-threads 1 || status=1
fi

# 3. Benchmarks, interleaved ours / theirs.
bench() { # spec mode batch steps warmup
  timeout 120 "$bin/pixelrnn" bench --device "$device" --spec "$1" --mode "$2" --batch "$3" --steps "$4" --warmup "$5" --json >> "$results" \
    || echo "pixelrnn bench $1 $2 failed" >&2
  if [[ $torch_device != none ]]; then
    timeout 120 "${TORCH_PYTHON:-python3}" python/bench/twin_bench.py --device "$torch_device" --model "$1" --mode "$2" --batch "$3" --steps "$steps" --warmup "$warmup" >> "$results" \
      || echo "twin_bench $1 $2 failed" >&2
  fi
}
for spec in $specs; do
  for mode in $modes; do
    b=${batch[$spec]}; s=$steps; w=$warmup
    if [[ $mode == sample ]]; then b=$sample_batch; s=3; w=1; fi
    for ((r = 1; r <= rounds; r++)); do
      echo "== round $r: $spec $mode batch $b ($(($(date +%s) - started)) s)"
      bench "$spec" "$mode" "$b" "$s" "$w"
    done
  done
done

# 4. The table, last.
echo
grep -h -m1 '"adapter"' "$results" | python3 -c 'import json, sys; print("adapter:", json.loads(sys.stdin.read())["adapter"])' || true
python3 scripts/ratio-table.py "$results"
echo "total $(($(date +%s) - started)) s; tests $([[ $status == 0 ]] && echo passed || echo FAILED)"
exit $status
