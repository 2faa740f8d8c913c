"""pixelrnn: PixelRNN / PixelCNN (van den Oord, Kalchbrenner, Kavukcuoglu, ICML 2016) from Rust.

Exact log-likelihoods, fast incremental sampling, image completion and a lossless codec for the
models that ``pixelrnn train`` writes (and those in ``pretrained/``), with NumPy in and out::

    import pixelrnn
    model = pixelrnn.load("pretrained/binarized-mnist-diagonal-bilstm")
    nats = model.nll(images)                 # (N,) float64, -log p(x) in nats
    maps = model.score(images)               # (N, H, W) per-pixel NLL
    samples = model.sample(16, seed=1)       # (16, C, H, W) uint8
    done = model.complete(images, rows=14, samples=4, seed=1)   # (N, 4, C, H, W)
    data = pixelrnn.compress(model, images)  # a .prnn file, the CLI's format
    back = pixelrnn.decompress(model, data)

Images are ``uint8`` arrays of shape ``(N, C, H, W)`` or ``(N, H, W)`` (grey), one image
``(C, H, W)`` / ``(H, W)`` where a single image is meant, values in ``0..levels`` (0/1 for
binarized MNIST, 0..255 otherwise). Long calls release the GIL. Errors of the library (a damaged
file, a run that cannot be loaded) are :class:`PixelRnnError`; bad arguments are ``TypeError`` /
``ValueError``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import PixelRnnError

__all__ = [
    "Model",
    "PixelRnnError",
    "TrainResult",
    "Decompressed",
    "load",
    "compress",
    "decompress",
    "train",
    "__version__",
]

__version__: str = _native.__version__

Labels = Union[None, int, Sequence[int], np.ndarray]


class Decompressed(NamedTuple):
    """What a ``.prnn`` file holds: the images, their names, and their class labels (a
    class-conditional model's files) or ``None``."""

    images: np.ndarray
    names: List[str]
    labels: Optional[np.ndarray]


class TrainResult(NamedTuple):
    """How :func:`train` ended: the steps completed, whether it stopped early, the best
    validation bits/dim (``None`` before any validation), and the run directory."""

    step: int
    interrupted: bool
    best_valid_bits_per_dim: Optional[float]
    run_dir: str


class Model:
    """A trained run's model, loaded by :func:`load`. Thread-safe: calls on one model from
    several threads take turns, and each call releases the GIL while it works."""

    def __init__(self, native: "_native.Model") -> None:
        self._native = native

    # --- what the model is -------------------------------------------------------------
    @property
    def channels(self) -> int:
        """Channels of an image: 1 (grey) or 3 (RGB)."""
        return self._native.channels

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return self._native.height

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return self._native.width

    @property
    def shape(self) -> Tuple[int, int, int]:
        """``(channels, height, width)`` of one image."""
        return (self.channels, self.height, self.width)

    @property
    def levels(self) -> int:
        """Values per sub-pixel: 2 (binary images) or 256."""
        return self._native.levels

    @property
    def classes(self) -> Optional[int]:
        """Number of classes of a class-conditional model, else ``None``."""
        return self._native.classes

    @property
    def architecture(self) -> str:
        """``pixel-cnn``, ``row-lstm``, ``diagonal-bilstm`` or ``gated-pixel-cnn``."""
        return self._native.architecture

    @property
    def dataset_name(self) -> str:
        """The dataset the run was trained on (``binarized-mnist``, ``cifar10``, ...); its
        images are :meth:`dataset`'s."""
        return self._native.dataset_name

    @property
    def step(self) -> int:
        """The checkpoint's training step."""
        return self._native.step

    @property
    def averaged(self) -> bool:
        """Whether the weights are the run's weight average (``train --ema``)."""
        return self._native.average is not None

    @property
    def checkpoint_path(self) -> str:
        """The checkpoint the weights came from."""
        return self._native.checkpoint_path

    @property
    def unit(self) -> str:
        """The paper's unit for this model's NLL: ``nats`` (binary images) or ``bits/dim``."""
        return "nats" if self.levels == 2 else "bits/dim"

    @property
    def config(self) -> Dict[str, Any]:
        """The run's ``config.json``."""
        return json.loads(self._native.config_json())

    def __repr__(self) -> str:
        return repr(self._native)

    # --- likelihood --------------------------------------------------------------------
    def nll(self, images: np.ndarray, labels: Labels = None, unit: str = "nats", batch_size: int = 64) -> np.ndarray:
        """Each image's exact NLL, ``-log p(x)`` (``-log p(x | y)`` for a class-conditional
        model, given ``labels``), as ``pixelrnn eval`` computes it: float64 of shape ``(N,)``.

        ``unit``: ``"nats"`` (per image), ``"bits"`` (per image) or ``"bits/dim"`` (per
        sub-pixel); :attr:`unit` is the paper's for this model.
        """
        pixels, count = self._images(images)
        nats = np.asarray(self._native.nll(pixels, self._labels(labels, count, required=True), batch_size))
        return _convert(nats, unit, self.channels * self.height * self.width)

    def score(self, images: np.ndarray, labels: Labels = None, per_channel: bool = False) -> np.ndarray:
        """Per-pixel NLL maps in nats, as ``pixelrnn score`` computes them: ``(N, H, W)``
        (summed over the channels), or ``(N, C, H, W)`` with ``per_channel``. Their sum over
        an image is its NLL."""
        pixels, count = self._images(images)
        values = np.asarray(self._native.score(pixels, self._labels(labels, count, required=True)))
        maps = values.reshape(count, self.height, self.width, self.channels).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(maps) if per_channel else maps.sum(axis=1)

    # --- generation --------------------------------------------------------------------
    def sample(
        self, n: int, seed: int = 0, temperature: float = 1.0, labels: Labels = None, naive: bool = False
    ) -> np.ndarray:
        """``n`` new images, ``(n, C, H, W)`` uint8, exactly those of ``pixelrnn sample --count n
        --seed seed``. A class-conditional model draws ``labels`` (one class, or one per image;
        default: the classes in turn, as the CLI). ``naive``: the reference sampler that reruns
        the whole model per sub-pixel (the same images, slower)."""
        n = _positive(n, "n")
        if labels is None and self.classes is not None:
            labels = np.arange(n) % self.classes
        raw = self._native.sample(n, _seed(seed), float(temperature), self._labels(labels, n, required=False), naive)
        return _array(raw, (n,) + self.shape)

    def complete(
        self,
        images: np.ndarray,
        rows: int,
        samples: int = 1,
        seed: int = 0,
        temperature: float = 1.0,
        labels: Labels = None,
        naive: bool = False,
    ) -> np.ndarray:
        """Image completion (the paper's Figure 1): each image's top ``rows`` rows kept, the rest
        sampled ``samples`` times; ``(N, samples, C, H, W)`` uint8, exactly ``pixelrnn complete
        --observed-rows rows --samples-per-image samples --seed seed`` on the same images."""
        pixels, count = self._images(images)
        samples = _positive(samples, "samples")
        if not isinstance(rows, (int, np.integer)) or not 0 <= rows < self.height:
            raise ValueError(f"rows must be an int in 0..{self.height - 1} (the image height is {self.height}), got {rows!r}")
        raw = self._native.complete(
            pixels, int(rows), samples, _seed(seed), float(temperature), self._labels(labels, count, required=True), naive
        )
        return _array(raw, (count, samples) + self.shape)

    # --- data --------------------------------------------------------------------------
    def dataset(
        self, split: str = "test", limit: Optional[int] = None, data_dir: Union[None, str, "os.PathLike[str]"] = None
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """The first ``limit`` images of ``split`` ("train", "valid" or "test") of the run's
        dataset and their labels (or ``None``): ``((N, C, H, W) uint8, (N,) uint8)``, the images
        ``pixelrnn eval`` scores (binarized MNIST binarized the same way). The data is found as
        the CLI finds it: ``data_dir``, else the folder the run recorded, else the user cache
        (fetched on first use)."""
        if limit is not None:
            limit = _positive(limit, "limit")
        raw, count, labels = self._native.dataset(split, limit, None if data_dir is None else os.fspath(data_dir))
        images = _array(raw, (count,) + self.shape)
        return images, None if labels is None else np.frombuffer(labels, dtype=np.uint8).copy()

    # --- weights -----------------------------------------------------------------------
    def export(self, layout: str = "pytorch") -> bytes:
        """The weights as safetensors bytes: the PyTorch twin's ``state_dict`` layout
        (``"pytorch"``) or this crate's (``"pixelrnn"``), as ``pixelrnn export`` writes them."""
        return self._native.export(layout)

    def to_torch(self) -> Any:
        """The model as a PyTorch module (the twin in :mod:`pixelrnn.twin`, which needs
        ``torch``), with these weights; its ``nll`` gives this model's NLL (a class-conditional
        model's: ``nll(images, labels)``). The benchmark specs' architectures M1-M4 become the
        twin's modules in its own ``state_dict`` layout; PixelCNNs and Gated PixelCNNs that
        layout has no place for (skip connections, the logistic mixture, class conditioning)
        become a :class:`pixelrnn.twin.NativeModel` in pixelrnn's names. A Row LSTM or Diagonal
        BiLSTM outside M3/M4 has no twin: ``ValueError``."""
        try:
            from . import twin
        except ImportError as e:
            raise ImportError(f"Model.to_torch needs PyTorch ({e}): pip install torch") from e
        config = json.loads(self._native.config_json())["model"]
        try:
            weights = self.export("pytorch")
        except PixelRnnError as e:
            if config["architecture"] not in ("pixel-cnn", "gated-pixel-cnn"):
                raise ValueError(f"the PyTorch twin has no such model: {e}") from e
            return twin.native_from_safetensors(self.export("pixelrnn"), config)
        return twin.from_safetensors(weights, config)

    # --- argument checks ---------------------------------------------------------------
    def _images(self, images: Any) -> Tuple[bytes, int]:
        """The images as the native layer's bytes, and their count, checked."""
        if not isinstance(images, np.ndarray):
            raise TypeError(f"images must be a numpy.ndarray of uint8, got {type(images).__name__}")
        if images.dtype != np.uint8:
            raise TypeError(f"images must have dtype uint8, got {images.dtype}")
        c, h, w = self.shape
        if images.ndim == 3 and c == 1 and images.shape[1:] == (h, w):
            images = images[:, None]
        elif images.ndim == 2 and c == 1 and images.shape == (h, w):
            images = images[None, None]
        elif images.ndim == 3 and images.shape == (c, h, w):
            images = images[None]
        if images.ndim != 4 or images.shape[1:] != (c, h, w):
            grey = f" or (N, {h}, {w})" if c == 1 else ""
            raise ValueError(f"images must have shape (N, {c}, {h}, {w}){grey} for this model, got {images.shape}")
        if images.shape[0] == 0:
            raise ValueError("no images: the array is empty")
        top = int(images.max())
        if top >= self.levels:
            raise ValueError(f"images hold the value {top}, above the model's levels 0..{self.levels - 1}")
        return np.ascontiguousarray(images).tobytes(), images.shape[0]

    def _labels(self, labels: Labels, count: int, required: bool) -> Optional[bytes]:
        """Class labels as bytes, one per image; checked against the model."""
        if labels is None:
            if required and self.classes is not None:
                raise ValueError(f"the model is class-conditional ({self.classes} classes): give labels")
            return None
        if self.classes is None:
            raise ValueError("the model is not class-conditional: it takes no labels")
        array = np.full(count, labels) if np.ndim(labels) == 0 else np.asarray(labels)
        if array.shape != (count,) or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"labels must be one int or {count} ints, got {np.asarray(labels).shape} of {array.dtype}")
        if array.min() < 0 or array.max() >= self.classes:
            raise ValueError(f"labels must be in 0..{self.classes - 1}")
        return array.astype(np.uint8).tobytes()


def load(
    run_dir: Union[str, "os.PathLike[str]"],
    checkpoint: str = "best",
    raw_weights: bool = False,
    allow_unchecked: bool = False,
    device: str = "cpu",
) -> Model:
    """Loads a run directory written by ``pixelrnn train`` (or a ``pretrained/`` model): its
    ``checkpoint`` ("best" or "last"), with the run's weight average when it keeps one
    (``raw_weights`` for the others), on ``device`` ("cpu"; a GPU backend where the module was
    built with one)."""
    path = os.fspath(run_dir)
    if not os.path.isdir(path):
        raise PixelRnnError(f"{path}: no such run directory")
    return Model(_native.Model.load(path, checkpoint, raw_weights, allow_unchecked, device))


def compress(
    model: Model,
    images: np.ndarray,
    names: Optional[Sequence[str]] = None,
    labels: Labels = None,
    chunk: Optional[int] = None,
) -> bytes:
    """Compresses ``images`` losslessly with ``model`` into a ``.prnn`` file (bytes), byte for
    byte what ``pixelrnn compress`` writes for the same images and names; ``pixelrnn
    decompress`` reads it. ``names`` default to the CLI's ``00000.png``, ... A class-conditional
    model codes each image's label in the file."""
    pixels, count = model._images(images)
    coded, _costs = model._native.compress(
        pixels, None if names is None else [str(n) for n in names], model._labels(labels, count, True), chunk
    )
    return coded


def decompress(model: Model, data: bytes, with_names: bool = False) -> Union[np.ndarray, Decompressed]:
    """The images of a ``.prnn`` file (``pixelrnn compress``'s or :func:`compress`'s) coded
    with ``model``: ``(N, C, H, W)`` uint8; with ``with_names`` a :class:`Decompressed` with
    the names and labels too."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    raw, count, names, labels = model._native.decompress(bytes(data))
    images = _array(raw, (count,) + model.shape)
    if not with_names:
        return images
    return Decompressed(images, list(names), None if labels is None else np.frombuffer(labels, dtype=np.uint8).copy())


def _flags(options: Dict[str, Any]) -> List[str]:
    """Keyword options as ``pixelrnn train`` flags: ``ema=0.9995`` -> ``--ema 0.9995``,
    ``no_skip=True`` -> ``--no-skip``; ``False`` and ``None`` leave a flag out."""
    flags: List[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif isinstance(value, (list, tuple)):
            flags += [flag, ",".join(str(v) for v in value)]
        else:
            flags += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return flags


def train(
    out: Union[str, "os.PathLike[str]"],
    config: Optional[Dict[str, Any]] = None,
    progress: bool = True,
    callback: Optional[Callable[[Dict[str, Any]], None]] = None,
    **options: Any,
) -> TrainResult:
    """Trains a model into the run directory ``out``, exactly as ``pixelrnn train --out out``
    with the CLI's flags given as keyword ``options`` (or a ``config`` dict of the same keys):
    ``train("runs/mnist", model="pixel-cnn", dataset="binarized-mnist", steps=1000)``. The run
    directory is the CLI's (``pixelrnn eval --run out`` reads it; ``resume=True`` continues it).

    ``callback(event)`` gets every training event as a dict (``event`` is ``started``,
    ``step``, ``validation`` or ``checkpoint``, with the fields of ``metrics.jsonl``);
    ``progress`` prints a progress line on stderr. Ctrl-C stops training after a checkpoint,
    as it stops ``pixelrnn train``, and raises ``KeyboardInterrupt``; ``resume=True`` goes on.
    """
    merged = dict(config or {})
    merged.update(options)
    if "out" in merged:
        raise TypeError("give the run directory as train's first argument, not as out=")
    flags = ["--out", os.fspath(out), "--quiet"] + _flags(merged)
    show = _Progress() if progress else None

    def observe(text: str) -> None:
        event = json.loads(text)
        if show is not None:
            show(event)
        if callback is not None:
            callback(event)

    try:
        step, interrupted, best = _native.train(flags, observe)
    finally:
        if show is not None:
            show.close()
    return TrainResult(step, interrupted, best, os.fspath(out))


class _Progress:
    """The progress line of :func:`train` on stderr."""

    def __init__(self) -> None:
        self.total = 0
        self.open = False

    def __call__(self, event: Dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "started":
            self.total = event["total_steps"]
        elif kind == "step":
            line = (
                f"\rstep {event['step']}/{self.total}  loss {event['loss_nats']:.2f} nats "
                f"({event['bits_per_dim']:.4f} bits/dim)  {event['images_per_sec']:.0f} img/s"
            )
            sys.stderr.write(line)
            sys.stderr.flush()
            self.open = True
        elif kind == "validation":
            self.close()
            best = " (best)" if event["best"] else ""
            sys.stderr.write(
                f"step {event['step']}: valid {event['nll_nats']:.3f} nats, {event['bits_per_dim']:.4f} bits/dim{best}\n"
            )

    def close(self) -> None:
        if self.open:
            sys.stderr.write("\n")
            self.open = False


def _convert(nats: np.ndarray, unit: str, dims: int) -> np.ndarray:
    if unit == "nats":
        return nats
    if unit == "bits":
        return nats / math.log(2)
    if unit == "bits/dim":
        return nats / (math.log(2) * dims)
    raise ValueError(f'unit must be "nats", "bits" or "bits/dim", got {unit!r}')


def _positive(value: Any, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _seed(seed: Any) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an int in 0..2**64-1, got {seed!r}")
    return int(seed)


def _array(raw: bytes, shape: Tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape).copy()
