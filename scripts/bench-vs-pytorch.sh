#!/usr/bin/env bash
# Side-by-side benchmark of pixelrnn against the repository's PyTorch twin
# (python/pixelrnn/twin.py, timed by python/bench/twin_bench.py; M5 and M6 are its
# NativeModel: Gated PixelCNN, and PixelCNN with the logistic mixture), interleaved (ours,
# theirs, ours, theirs, ...) for every spec and mode, on the same machine.
#
#   scripts/bench-vs-pytorch.sh [RESULTS.jsonl]
#
# Environment: TORCH_VENV (default .venv-torch, created with scripts/setup-torch.sh if
# missing), THREADS (2), ROUNDS (2), STEPS (10), WARMUP (3), SPECS ("m1 m2 m3 m4 m5 m6"),
# MODES ("train infer sample"), MEMORY (1: also measure the peak resident memory of a
# training run of each spec, ours and theirs, as the child process's maximum RSS).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${TORCH_VENV:-.venv-torch}
threads=${THREADS:-2}
rounds=${ROUNDS:-2}
steps=${STEPS:-10}
warmup=${WARMUP:-3}
specs=${SPECS:-m1 m2 m3 m4 m5 m6}
modes=${MODES-train infer sample}
out=${1:-bench-results.jsonl}

[[ -x $venv/bin/python ]] || scripts/setup-torch.sh "$venv"
cargo build --release -q -p pixelrnn-cli
ours=target/release/pixelrnn
: > "$out"
for spec in $specs; do
  for mode in $modes; do
    # The fast sampler generates a whole batch per step: fewer steps keep the run short.
    s=$steps; w=$warmup
    if [[ $mode == sample ]]; then s=3; w=1; fi
    for ((r = 1; r <= rounds; r++)); do
      echo "round $r: $spec $mode" >&2
      "$ours" bench --spec "$spec" --mode "$mode" --steps "$s" --warmup "$w" --threads "$threads" --json >> "$out"
      "$venv/bin/python" python/bench/twin_bench.py --model "$spec" --mode "$mode" --steps "$steps" --warmup "$warmup" --threads "$threads" >> "$out"
    done
  done
done
python3 scripts/ratio-table.py "$out"

if [[ ${MEMORY:-1} == 1 ]]; then
  # Peak memory of a short training run (3 timed steps): the whole process, runtime included.
  peak() { python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"; }
  printf '\n%-5s %18s %18s %7s\n' spec "pixelrnn peak MiB" "pytorch peak MiB" ratio
  for spec in $specs; do
    o=$(peak "$ours" bench --spec "$spec" --mode train --steps 3 --warmup 1 --threads "$threads" --json)
    t=$(peak "$venv/bin/python" python/bench/twin_bench.py --model "$spec" --mode train --steps 3 --warmup 1 --threads "$threads")
    python3 -c "import sys; o, t = int(sys.argv[1]), int(sys.argv[2]); print(f'{sys.argv[3]:<5} {o/1024:>18.1f} {t/1024:>18.1f} {o/t:>7.2f}')" "$o" "$t" "$spec"
  done
fi
