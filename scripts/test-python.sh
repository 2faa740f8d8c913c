#!/usr/bin/env bash
# The Python package's tests (python/tests): builds the native module into a virtual environment
# (target/py-venv, with maturin, pytest and numpy from pip) and runs pytest against it and the
# debug `pixelrnn` binary (built here if `cargo test` has not). Skipped, saying why, without a
# Python 3 (with venv) or where pip cannot install the tools.
# Environment: PYTHON (default python3), PROFILE (dev or release; default dev), FEATURES (cargo
# feature flags, e.g. "--features pixelrnn-cli/mpi": scripts/test.sh passes its own, so that
# nothing is built twice).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
profile=${PROFILE:-dev}
if ! command -v "$python" > /dev/null; then
  echo "note: no $python: the Python package's tests are skipped"
  exit 0
fi
venv=target/py-venv
if [[ ! -x $venv/bin/python ]] && ! "$python" -m venv "$venv" > /dev/null 2>&1; then
  echo "note: $python cannot make a virtual environment (Debian: apt-get install python3-venv): the Python tests are skipped"
  rm -rf "$venv"
  exit 0
fi
if ! "$venv/bin/python" -m pip install -q "maturin>=1.5,<2" pytest numpy > /dev/null 2>&1; then
  echo "note: pip could not install maturin, pytest and numpy: the Python tests are skipped"
  exit 0
fi
bin=target/debug/pixelrnn
read -r -a flags <<< "${FEATURES:-}"
if [[ $profile == release ]]; then
  bin=target/release/pixelrnn
  flags+=(--release)
fi
cargo build -q -p pixelrnn-cli ${flags[@]+"${flags[@]}"}
log=$venv/maturin.log
if ! (cd python && VIRTUAL_ENV=$PWD/../$venv PATH=$PWD/../$venv/bin:$PATH maturin develop -q ${flags[@]+"${flags[@]}"}) > "$log" 2>&1; then
  cat "$log"
  echo "error: building the Python module failed" >&2
  exit 1
fi
echo "Python $("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])'): python/tests against the $profile module"
PIXELRNN_BIN=$PWD/$bin "$venv/bin/python" -m pytest -q python/tests
