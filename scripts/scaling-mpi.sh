#!/usr/bin/env bash
# Data-parallel scaling on this machine: images/s of `pixelrnn train` with one process (all
# cores, and one core) and with `mpirun -np 2 ... --distributed mpi` (one core per rank), on the
# benchmark specs (docs/bench-specs.md), same global batch; and what summing the gradients
# costs per step (the `gradient_sum_secs` of metrics.jsonl: flatten, reduce + broadcast,
# unflatten, including any wait for the slower rank).
#
#   scripts/scaling-mpi.sh [SPECS...]        (default: m1 m4; env STEPS, default 60)
#
# Medians over the steps after the first 10. One JSON line per run goes to
# target/scaling/scaling.jsonl; a table is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
specs=("$@")
[[ ${#specs[@]} -gt 0 ]] || specs=(m1 m4)
steps=${STEPS:-60}
data=${DATA:-../shared/data}
out=target/scaling
mkdir -p "$out"
cargo build --release -q -p pixelrnn-cli --features mpi
bin=target/release/pixelrnn
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
flags_of() {
  case $1 in
    m1) echo --dataset binarized-mnist --data-dir "$data/mnist" --model pixel-cnn --layers 7 --hidden 32 --output-hidden 64 --no-skip --batch-size 32 ;;
    m2) echo --dataset cifar10 --data-dir "$data/cifar10" --model pixel-cnn --layers 7 --hidden 64 --output-hidden 128 --no-skip --batch-size 16 ;;
    m3) echo --dataset binarized-mnist --data-dir "$data/mnist" --model row-lstm --layers 1 --hidden 32 --output-hidden 64 --no-skip --batch-size 32 ;;
    m4) echo --dataset binarized-mnist --data-dir "$data/mnist" --model diagonal-bilstm --layers 1 --hidden 16 --output-hidden 32 --no-skip --batch-size 32 ;;
  esac
}
summary() {  # spec, setup, processes, threads per process, run dir
  python3 - "$@" <<'PY' | tee -a "$out/scaling.jsonl"
import json, statistics as st, sys
spec, setup, procs, threads, run = sys.argv[1:]
rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
steps = [r for r in rows if r["event"] == "step"][10:]
sums = [r["gradient_sum_secs"] for r in steps if "gradient_sum_secs" in r]
print(json.dumps({"spec": spec, "setup": setup, "processes": int(procs), "threads_per_process": int(threads),
                  "steps_measured": len(steps), "images_per_sec": round(st.median(r["images_per_sec"] for r in steps), 1),
                  "gradient_sum_ms": round(1000 * st.median(sums), 2) if sums else None}))
PY
}
for spec in "${specs[@]}"; do
  # shellcheck disable=SC2046
  common=(train $(flags_of "$spec") --steps "$steps" --valid-every 0 --valid-limit 16 --checkpoint-every 0 --quiet --no-verify --overwrite)
  RAYON_NUM_THREADS=2 "$bin" "${common[@]}" --out "$out/$spec-1x2" 2> /dev/null
  summary "$spec" "1 process, 2 threads" 1 2 "$out/$spec-1x2"
  RAYON_NUM_THREADS=1 "$bin" "${common[@]}" --out "$out/$spec-1x1" 2> /dev/null
  summary "$spec" "1 process, 1 thread" 1 1 "$out/$spec-1x1"
  RAYON_NUM_THREADS=1 mpirun --oversubscribe -np 2 --bind-to core -x RAYON_NUM_THREADS --mca btl self,vader \
    "$bin" "${common[@]}" --distributed mpi --out "$out/$spec-2x1" 2> /dev/null
  summary "$spec" "mpirun -np 2 (shared memory), 1 thread each" 2 1 "$out/$spec-2x1"
  RAYON_NUM_THREADS=1 mpirun --oversubscribe -np 2 --bind-to core -x RAYON_NUM_THREADS --mca btl self,tcp --mca btl_tcp_if_include lo \
    "$bin" "${common[@]}" --distributed mpi --out "$out/$spec-2x1-tcp" 2> /dev/null
  summary "$spec" "mpirun -np 2 (TCP on 127.0.0.1), 1 thread each" 2 1 "$out/$spec-2x1-tcp"
done
python3 - "$out/scaling.jsonl" "${specs[@]}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| spec | setup | images/s | gradient sum, ms/step |\n| --- | --- | ---: | ---: |")
for spec in sys.argv[2:]:
    latest = {}
    for r in rows:
        if r["spec"] == spec:
            latest[r["setup"]] = r
    for r in latest.values():
        print(f"| {spec} | {r['setup']} | {r['images_per_sec']} | {r['gradient_sum_ms'] if r['gradient_sum_ms'] is not None else '-'} |")
PY
