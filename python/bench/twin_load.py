"""Loads the repository's PyTorch twin (python/pixelrnn/twin.py) from its path, without the
package's native module: what the harnesses and scripts beside it import."""

import importlib.util
from pathlib import Path

TWIN_PATH = Path(__file__).resolve().parents[1] / "pixelrnn" / "twin.py"


def load_twin():
    spec = importlib.util.spec_from_file_location("pixelrnn_twin", TWIN_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


twin = load_twin()
