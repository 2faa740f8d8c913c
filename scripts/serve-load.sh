#!/usr/bin/env bash
# Load test of `pixelrnn serve` on 127.0.0.1 (BENCHMARKS.md, "serve"): starts the server on a run
# with MAX_JOBS jobs at once, posts completions of IMAGE from CLIENTS concurrent clients for
# DURATION seconds (scripts/serve_load.py), prints its JSON line, and stops the server with SIGINT.
#
#   scripts/serve-load.sh RUN_DIR IMAGE.png
# Environment: CLIENTS (8), DURATION (60), SAMPLES (2), MAX_JOBS (2), PIXELRNN (the binary;
# default a release build).
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?RUN_DIR}
image=${2:?IMAGE.png}
if [[ -z ${PIXELRNN:-} ]]; then
  cargo build --release -q -p pixelrnn-cli
  PIXELRNN=target/release/pixelrnn
fi
log=$(mktemp)
"$PIXELRNN" serve --run "$run" --addr 127.0.0.1:0 --max-jobs "${MAX_JOBS:-2}" 2> "$log" &
server=$!
trap 'kill $server 2> /dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "http://" "$log" && break; sleep 0.1; done
addr=$(grep -o "http://[0-9.:]*" "$log" | head -1 | sed 's|http://||')
model=$(basename "$run")
python3 scripts/serve_load.py --addr "$addr" --model "$model" --image "$image" --clients "${CLIENTS:-8}" \
  --seconds "${DURATION:-60}" --samples "${SAMPLES:-2}" --pid "$server"
kill -INT $server
code=0
wait $server || code=$?
echo "server: $(grep -c '^POST /api/complete' "$log") completion requests logged; stopped with exit code $code" >&2
