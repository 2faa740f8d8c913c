"""Shared fixtures: a small dataset in MNIST's real file format, runs trained through
``pixelrnn.train`` (the CLI's own training), and the ``pixelrnn`` binary for side-by-side checks.

The binary is ``$PIXELRNN_BIN``, else ``target/debug/pixelrnn`` or ``target/release/pixelrnn``
of this repository; tests that compare with it are skipped, saying so, when there is none.
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
from pathlib import Path
from typing import List

import numpy as np
import pytest

import pixelrnn

ROOT = Path(__file__).resolve().parents[2]


def _idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()


def write_small_mnist(folder: Path) -> Path:
    """300 train / 50 test images of 28x28 (a vertical bar placed by the image's index, so
    there is something to learn) with labels i % 10, as MNIST's four IDX .gz files."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    for n, images_name, labels_name in [(300, names[0], names[1]), (50, names[2], names[3])]:
        r = np.arange(28)[None, :, None]
        c = np.arange(28)[None, None, :]
        i = np.arange(n)[:, None, None]
        on = ((c + i) % 9 < 3) & (r > 3) & (r < 24)
        pixels = np.where(on, 250, 5).astype(np.uint8)
        (folder / images_name).write_bytes(gzip.compress(_idx_images(pixels)))
        (folder / labels_name).write_bytes(gzip.compress(_idx_labels(np.arange(n) % 10)))
    return folder


def tiny_options(data: Path, **extra) -> dict:
    """The options of a tiny, quick run on the small dataset."""
    options = dict(
        dataset="binarized-mnist",
        data_dir=data,
        model="pixel-cnn",
        preset="tiny",
        steps=4,
        batch_size=8,
        valid_every=0,
        valid_limit=20,
        checkpoint_every=2,
        no_verify=True,  # MNIST's file names, not its published contents
        seed=3,
    )
    options.update(extra)
    return options


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return write_small_mnist(tmp_path_factory.mktemp("data") / "mnist")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, data_dir) -> Path:
    """A tiny PixelCNN trained for 4 steps with a weight average."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    pixelrnn.train(out, progress=False, **tiny_options(data_dir, ema=0.9))
    return out


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory, data_dir) -> Path:
    out = tmp_path_factory.mktemp("runs") / "conditional"
    pixelrnn.train(out, progress=False, **tiny_options(data_dir, conditional=True))
    return out


@pytest.fixture(scope="session")
def model(run_dir):
    return pixelrnn.load(run_dir)


@pytest.fixture(scope="session")
def cli() -> Path:
    given = os.environ.get("PIXELRNN_BIN")
    candidates = [Path(given)] if given else [ROOT / "target" / "debug" / "pixelrnn", ROOT / "target" / "release" / "pixelrnn"]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    pytest.skip(f"no pixelrnn binary ({', '.join(map(str, candidates))}): build it with cargo build -p pixelrnn-cli")


def run_cli(cli: Path, args: List[str]) -> subprocess.CompletedProcess:
    done = subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, f"pixelrnn {' '.join(map(str, args))} failed: {done.stderr}"
    return done


def test_images(cli: Path, run: Path, folder: Path, limit: int = 10) -> np.ndarray:
    """The first ``limit`` test images of ``run``'s dataset, as ``pixelrnn eval --save-images``
    writes them (raw values), shaped (N, 1, 28, 28)."""
    path = folder / "images.raw"
    run_cli(cli, ["eval", "--run", run, "--limit", limit, "--save-images", path])
    return np.frombuffer(path.read_bytes(), dtype=np.uint8).reshape(limit, 1, 28, 28)


test_images.__test__ = False  # a helper, not a test
