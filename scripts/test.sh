#!/usr/bin/env bash
# The tests (README, and what CI runs through .ci/run): the whole workspace. When an MPI
# library and libclang are installed (Debian: libopenmpi-dev openmpi-bin libclang-dev), with the
# `mpi` feature, so that the tests of `train --distributed mpi` run under mpirun too; without
# them those tests are left out (said below) and the rest runs as usual. Then, where a Python 3
# is present, the Python package's tests (python/tests, pytest) against a build of the module in
# a virtual environment (target/py-venv: maturin, pytest and numpy from pip).
set -euo pipefail
cd "$(dirname "$0")/.."
features=()
libclang=$(scripts/find-libclang.sh)
if command -v mpicc > /dev/null && command -v mpirun > /dev/null && [[ -n $libclang ]]; then
  features=(--features pixelrnn-cli/mpi)
  echo "MPI found ($(mpirun --version 2>&1 | head -n 1)): testing with --features pixelrnn-cli/mpi"
else
  echo "note: no MPI library or libclang found: the MPI tests are left out (apt-get install libopenmpi-dev openmpi-bin libclang-dev)"
fi
cargo test --workspace -q "${features[@]}" "$@"
[[ $# -gt 0 ]] && exit 0  # a filtered run is about the Rust tests
# The same features, so that the Python module and the binary reuse what cargo test built.
FEATURES="${features[*]:-}" scripts/test-python.sh
