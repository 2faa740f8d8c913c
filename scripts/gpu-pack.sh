#!/usr/bin/env bash
# Builds, on this (CPU) machine, what scripts/gpu-check.sh needs on a GPU machine that has no
# Rust toolchain and no network, into two ignored folders to carry there:
#   .gpu/  pixelrnn.gz (release CLI, --features vulkan), pixelrnn-gpu-tests.gz (the test
#          executable of crates/pixelrnn/tests/library/ (causality and GPU tests));
#          the PyTorch side is the repository's own (python/bench/twin_bench.py), carried as a tracked file;
#   .gl/   Debian's Vulkan loader (libvulkan1 .deb), for machines without one.
# Both are stripped and gzipped to stay under the device tool's 64 MiB carry limit.
#
#   scripts/gpu-pack.sh            then, on the GPU machine: bash scripts/gpu-check.sh
# Environment: PROFILE (release; "dev" reuses a debug build, for trying the script out).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu .gl

profile=${PROFILE:-release}
dir=$([[ $profile == dev ]] && echo debug || echo "$profile")
cargo build --profile "$profile" -q -p pixelrnn-cli --features vulkan
strip -o .gpu/pixelrnn "target/$dir/pixelrnn"
tests=$(cargo test --profile "$profile" -q -p pixelrnn --features vulkan --test library --no-run --message-format=json \
  | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "library":
        print(m["executable"])')
[[ -n $tests ]] || { echo "gpu-pack: the gpu test executable was not built" >&2; exit 1; }
strip -o .gpu/pixelrnn-gpu-tests "$tests"
gzip -9f .gpu/pixelrnn .gpu/pixelrnn-gpu-tests

if ! ls .gl/libvulkan1_*.deb > /dev/null 2>&1; then
  lists=$(mktemp -d)
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$lists")
  mkdir -p "$lists/partial"
  apt-get "${o[@]}" -q update > /dev/null
  (cd .gl && apt-get "${o[@]}" -q download libvulkan1)
fi
du -ch .gpu/* .gl/* | tail -1
