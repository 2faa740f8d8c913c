#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) with cargo fuzz on the nightly toolchain
# (installs cargo-fuzz if missing), one after another. Seeds: fuzz/seeds/NAME (NAME = the
# target's name up to its first underscore); the growing corpus: fuzz/corpus/TARGET; crashes:
# fuzz/artifacts/TARGET/ (copy each into crates/pixelrnn/tests/library/fixtures/fuzz/TARGET/
# once fixed). One summary line per target goes to stdout.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || mapfile -t targets < <(cargo +nightly fuzz list)
status=0
for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target seeds=fuzz/seeds/${target%%_*}
  mkdir -p "$corpus" "$seeds"
  log=$(mktemp)
  if cargo +nightly fuzz run "$target" "$corpus" "$seeds" -- -max_total_time="$seconds" -rss_limit_mb=2048 > "$log" 2>&1; then
    echo "$target: ${seconds}s, $(grep -o 'Done [0-9]* runs' "$log" | tail -1 | cut -d' ' -f2) runs, no crash, corpus $(ls "$corpus" | wc -l) inputs"
  else
    status=1
    echo "$target: CRASH after $(grep -o '#[0-9]*' "$log" | tail -1) runs: $(grep -m1 -E 'SUMMARY|panicked' "$log"); input: $(grep -o 'fuzz/artifacts/[^ ]*' "$log" | tail -1)"
  fi
  rm -f "$log"
done
exit $status
