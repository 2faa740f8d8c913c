#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) with cargo fuzz on the nightly toolchain
# (installs cargo-fuzz if missing). Crashes are written to fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz
for target in $(cargo +nightly fuzz list); do
  corpus=fuzz/corpus/$target seeds=fuzz/seeds/${target%%_*}
  mkdir -p "$corpus" "$seeds"
  echo "fuzzing $target for ${seconds}s (corpus $corpus)" >&2
  cargo +nightly fuzz run "$target" "$corpus" "$seeds" -- -max_total_time="$seconds" -rss_limit_mb=2048
done
