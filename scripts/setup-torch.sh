#!/usr/bin/env bash
# Creates a virtual environment with PyTorch and NumPy for the twin (python/pixelrnn_twin) and the
# side-by-side scripts: scripts/setup-torch.sh [DIR] (default .venv-torch).
# PyPI's Linux torch wheel pulls its nvidia-* packages even on a CPU-only machine (about 5 GB);
# set TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU-only wheel where that index
# is reachable.
set -euo pipefail
dir=${1:-.venv-torch}
[[ -x $dir/bin/python ]] || python3 -m venv "$dir"
"$dir/bin/pip" install -q --upgrade pip
if [[ -n ${TORCH_INDEX:-} ]]; then
  "$dir/bin/pip" install -q torch --index-url "$TORCH_INDEX"
  "$dir/bin/pip" install -q numpy
else
  "$dir/bin/pip" install -q torch numpy
fi
"$dir/bin/python" -c "import torch; print('torch', torch.__version__, 'ready in', '$dir')"
