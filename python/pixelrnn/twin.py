"""The PyTorch twin of pixelrnn's models: the same networks, computing the same numbers (up to
float rounding), as ``torch.nn.Module`` s whose ``state_dict()`` is the layout that ``pixelrnn
export --layout pytorch`` writes and ``pixelrnn import`` reads
(``crates/pixelrnn/src/interop/pytorch.rs``) for the paper's models M1-M4, and pixelrnn's own
native layout for the successors' parts (M5, M6 and class conditioning; see below).

The models of van den Oord, Kalchbrenner and Kavukcuoglu, "Pixel Recurrent Neural Networks"
(ICML 2016, https://arxiv.org/abs/1601.06759), at the benchmark specs of
``docs/bench-specs.md`` and any width h:

- :class:`PixelCNN` (§3.5, Fig. 5 left; M1 binary 1x28x28, M2 RGB 3x32x32 with 256 levels): a
  7x7 mask A convolution, residual blocks of masked convolutions, the output stack;
- :class:`RowLSTM` (§3.1, Eq. 3; M3): one Row LSTM layer, rows scanned top to bottom from a zero
  state;
- :class:`DiagBiLSTM` (§3.2, Fig. 3/4; M4): one Diagonal BiLSTM layer, both directions on the
  skewed map, the right-to-left one shifted down one row, with the bias-driven padding
  (``train --diagonal-padding bias``).

Every model has residual connections (§3.3), no skip connections, the masks of §3.4 (R -> G -> B
colour groups for RGB data) and Table 1's output stack (ReLU, 1x1, ReLU, 1x1 of width 2h) with
the paper's output distribution (§5.1): a sigmoid per sub-pixel for binary images, a softmax over
the levels otherwise. The LSTM specs are binary only. The networks are convolutions and scans:
they take images of any size (the specs' are 28x28 and 32x32).

Input scaling (``crates/pixelrnn/src/image_spec.rs``): binary images enter as their raw {0, 1}
values, others as ``2 v / (levels - 1) - 1``; targets are the raw integers. Logits are
``[N, C * P, H, W]`` with channel c's P parameters the contiguous block c (P = 1 binary, P =
levels otherwise), so that the mask B output convolutions give channel c only what may
condition it.

The successors' parts, in pixelrnn's *native* layout (the tensor names ``pixelrnn export
--layout native`` writes, ``crates/pixelrnn/src/interop/mod.rs``; masks are buffers outside the
state dict): :class:`NativeModel`, built from a pixelrnn model config (the ``pixelrnn.model``
metadata, a run's ``config.json["model"]``; :func:`native_config`), is pixelrnn's ``PixelRnn``
for the convolutional architectures (PixelCNN and Gated PixelCNN, with or without skip
connections), with

- Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
  Decoders", https://arxiv.org/abs/1606.05328, §2.1-2.2; M5): a :class:`VerticalStack` (the
  rows above, no blind spot) beside :class:`GatedLayer` s (the row, gated tanh * sigmoid units);
- PixelCNN++'s discretized logistic mixture (Salimans et al. 2017,
  https://arxiv.org/abs/1701.05517, §2.1-2.2; M6): :class:`LogisticMixture`, K logistics per
  sub-pixel with the R -> G -> B linear dependence of the means, in log space at every bin;
- class conditioning (van den Oord et al. 2016, §2.3): :class:`ClassEmbedding`, a learned vector
  per class added to the trunk before every layer and before the output stack;
  ``nll(images, labels)``.

The Row LSTM and Diagonal BiLSTM have the PyTorch layout's twin only.

This module imports only ``torch`` and ``numpy`` (and the standard library's ``json``), so it
can be loaded on its own from its path (``importlib``), without the package's native module::

    from pixelrnn import twin
    model = twin.from_safetensors(open("model.safetensors", "rb").read())
    nats = model.nll(images)            # images: [N, C, H, W] uint8 -> [N] nats
    data = twin.to_safetensors(model)   # for `pixelrnn import`

    gated = twin.native_from_safetensors(open("native.safetensors", "rb").read())
    nats = gated.nll(images, labels)    # labels: [N] classes of a conditional model, else None
    data = twin.native_to_safetensors(gated)   # for `pixelrnn import`, in the native layout
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SPECS",
    "PixelCNN",
    "RowLSTM",
    "DiagBiLSTM",
    "MaskedConv2d",
    "ResidualBlock",
    "nll_per_subpixel",
    "lstm_cell",
    "contiguous_groups",
    "visibility_mask",
    "skew",
    "unskew",
    "build",
    "from_state_dict",
    "from_safetensors",
    "to_safetensors",
    "read_safetensors",
    "write_safetensors",
    "MIN_LOG_SCALE",
    "NATIVE_SPECS",
    "LogisticMixture",
    "gate",
    "VerticalStack",
    "GatedLayer",
    "NativeResidualBlock",
    "NativeOutputStack",
    "ClassEmbedding",
    "NativeModel",
    "native_config",
    "build_native",
    "native_from_state_dict",
    "native_from_safetensors",
    "native_to_safetensors",
]

#: The benchmark specs of ``docs/bench-specs.md`` the twin has: architecture, colour, and the
#: spec's own width h and depth (PixelCNN blocks; the LSTM specs have one layer).
SPECS = {
    "m1": ("pixel-cnn", False, 32, 7),
    "m2": ("pixel-cnn", True, 64, 7),
    "m3": ("row-lstm", False, 32, 1),
    "m4": ("diagonal-bilstm", False, 16, 1),
}

# ----------------------------------------------------------------------------------------------
# Masks (§3.4), as pure data
# ----------------------------------------------------------------------------------------------


def contiguous_groups(channels: int, groups: int) -> list[int]:
    """The colour group of every channel of a ``channels``-wide map split into ``groups``
    contiguous groups (1 for grey data, 3 for RGB): channel c is in group ``groups * c //
    channels``, so that the first third of an RGB map is R, the second G, the last B."""
    return [groups * c // channels for c in range(channels)]


def visibility_mask(kind: str | None, kernel: tuple[int, int], in_groups: list[int], out_groups: list[int]) -> torch.Tensor:
    """The visibility of every weight of a masked convolution, ``[out, in, kh, kw]`` float32,
    **1 = visible, 0 = hidden**.

    For a kernel with centre ``(kh // 2, kw // 2)``: the rows above the centre row are visible;
    on the centre row the columns left of the centre are visible, those right of it hidden; the
    rows below are hidden. The centre tap is decided per (output, input) channel by their colour
    groups: output group j sees input group i iff ``i < j`` (``kind == "A"``, the first layer: a
    sub-pixel never sees itself) or ``i <= j`` (``"B"``, every later layer). ``kind=None`` is an
    unmasked (all-visible) kernel. With one colour group mask A hides the centre, mask B shows it.

    Gated PixelCNN's vertical stack (van den Oord et al. 2016, §2.2) has two masks without colour
    groups (every channel of the rows above is known): ``"above"``, the rows above the centre row
    only (its first convolution, which reads the image: the down-shift), and ``"vertical"``, the
    rows above and the whole centre row (its later ones, whose input at row r describes rows < r).
    """
    kh, kw = kernel
    cy, cx = kh // 2, kw // 2
    visible = np.zeros((len(out_groups), len(in_groups), kh, kw), dtype=np.float32)
    if kind is None:
        visible[:] = 1.0
        return torch.from_numpy(visible)
    if kind in ("above", "vertical"):
        visible[:, :, : cy + (kind == "vertical"), :] = 1.0
        return torch.from_numpy(visible)
    if kind not in ("A", "B"):
        raise ValueError(f'mask kind must be "A", "B", "above", "vertical" or None, got {kind!r}')
    visible[:, :, :cy, :] = 1.0  # rows above the centre row
    visible[:, :, cy, :cx] = 1.0  # left of the centre on its row
    gout = np.asarray(out_groups)[:, None]
    gin = np.asarray(in_groups)[None, :]
    visible[:, :, cy, cx] = (gin < gout) if kind == "A" else (gin <= gout)
    return torch.from_numpy(visible)


class MaskedConv2d(nn.Module):
    """A 2-D convolution whose kernel is multiplied by a constant mask (a buffer, ``mask``,
    1 = visible; see :func:`visibility_mask`) in every forward pass, so that no update can open
    a hidden tap. State: ``weight [out, in, kh, kw]``, ``bias [out]``, ``mask [out, in, kh, kw]``.

    Weights and bias start from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the fan-in of the whole
    kernel (PyTorch's default for convolutions, and pixelrnn's). ``persistent=False`` keeps the
    mask out of ``state_dict()`` (pixelrnn's native layout, which holds no masks).
    """

    def __init__(
        self,
        in_groups: list[int],
        out_groups: list[int],
        kernel: tuple[int, int],
        kind: str | None,
        padding: tuple[int, int] = (0, 0),
        persistent: bool = True,
    ) -> None:
        super().__init__()
        kh, kw = kernel
        cin, cout = len(in_groups), len(out_groups)
        bound = (cin * kh * kw) ** -0.5
        self.weight = nn.Parameter(torch.empty(cout, cin, kh, kw).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(cout).uniform_(-bound, bound))
        self.register_buffer("mask", visibility_mask(kind, kernel, in_groups, out_groups), persistent=persistent)
        self.padding = tuple(padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in, H, W]`` -> ``[N, out, H + 2 pad_h - kh + 1, W + 2 pad_w - kw + 1]``."""
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def _pointwise(cin: int, cout: int, colours: int) -> nn.Module:
    """A 1x1 convolution: mask B between contiguous colour groups for RGB data (not dense
    there), a plain ``nn.Conv2d`` for grey data (where mask B hides nothing)."""
    if colours == 1:
        return nn.Conv2d(cin, cout, 1)
    return MaskedConv2d(contiguous_groups(cin, colours), contiguous_groups(cout, colours), (1, 1), "B")


# ----------------------------------------------------------------------------------------------
# The shared parts: input scaling, output stack, likelihood, LSTM cell, skew
# ----------------------------------------------------------------------------------------------


class _Twin(nn.Module):
    """What the three models share: the 7x7 mask A input convolution ``inp`` (C -> 2h, §3.4),
    the output stack ``o1``/``o2`` (Table 1: ReLU, 1x1 2h -> 2h, ReLU, 1x1 2h -> C * P), the
    input scaling and the NLL. Subclasses define ``trunk`` (``[N, 2h, H, W]`` -> same)."""

    def __init__(self, h: int, channels: int, levels: int) -> None:
        super().__init__()
        if h < 1:
            raise ValueError(f"the width h must be positive, got {h}")
        if levels < 2 or (levels == 2) != (channels == 1):
            raise ValueError(
                f"the twin models binary grey images or RGB images of more than 2 levels, not {channels} channels of {levels} levels"
            )
        self.h = h
        self.channels = channels
        self.levels = levels
        groups = contiguous_groups(channels, channels)
        self.inp = MaskedConv2d(groups, contiguous_groups(2 * h, channels), (7, 7), "A", padding=(3, 3))

    def _head(self) -> None:
        """Builds the output stack (after the trunk's layers, as the state dict lists it)."""
        params = 1 if self.levels == 2 else self.levels
        self.o1 = _pointwise(2 * self.h, 2 * self.h, self.channels)
        self.o2 = _pointwise(2 * self.h, self.channels * params, self.channels)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def scale(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The network input for raw images ``[N, C, H, W]`` (integers in ``0..levels``): floats
        ``[N, C, H, W]`` of the model's dtype (float32 unless converted), the raw values for
        binary images, ``2 v / (levels - 1) - 1`` otherwise."""
        x = self._images(images)
        dtype = self.inp.weight.dtype
        if self.levels == 2:
            return x.to(dtype)
        return x.to(dtype) * torch.tensor(2.0 / (self.levels - 1), dtype=dtype) - 1.0

    def forward_scaled(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of scaled input ``x`` (see :meth:`scale`): ``[N, C, H, W]`` float ->
        ``[N, C * P, H, W]``."""
        y = self.trunk(self.inp(x))  # [N, 2h, H, W]
        return self.o2(F.relu(self.o1(F.relu(y))))

    def forward(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Logits of every sub-pixel's conditional distribution: raw images ``[N, C, H, W]``
        (uint8 or long) -> ``[N, C * P, H, W]``, channel c's P logits the contiguous block c
        (P = 1 for binary images: p(1) = sigmoid; P = levels otherwise: a softmax)."""
        return self.forward_scaled(self.scale(images))

    def nll(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The exact NLL of each image in nats, ``-log p(x) = -sum_i log p(x_i | x_<i)``:
        ``[N, C, H, W]`` integers -> ``[N]`` float32."""
        targets = self._images(images)
        return nll_per_subpixel(self.forward(targets), targets, self.levels).flatten(1).sum(1)

    def _images(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(images, device=self.inp.weight.device)
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"images must be [N, {self.channels}, H, W], got {tuple(x.shape)}")
        if x.is_floating_point() or x.dtype == torch.bool:
            raise TypeError(f"images must be integers (uint8 or long), got {x.dtype}")
        return x.long()


def nll_per_subpixel(logits: torch.Tensor, targets: torch.Tensor, levels: int) -> torch.Tensor:
    """``-log p(x_i | x_<i)`` of every sub-pixel in nats (§5.1): logits ``[N, C * P, H, W]``,
    targets ``[N, C, H, W]`` integers -> ``[N, C, H, W]``. Binary: ``softplus(l) - t l``, written
    stably as ``max(l, 0) - t l + log(1 + e^-|l|)``; otherwise the softmax cross-entropy
    ``logsumexp(l) - l[t]`` over each sub-pixel's ``levels`` logits."""
    if levels == 2:
        t = targets.to(logits.dtype)
        return F.relu(logits) - logits * t + torch.log1p(torch.exp(-logits.abs()))
    n, c, height, width = targets.shape
    per_level = logits.reshape(n, c, levels, height, width)
    chosen = per_level.gather(2, targets.long().unsqueeze(2)).squeeze(2)
    return torch.logsumexp(per_level, dim=2) - chosen


def lstm_cell(gates: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of Eq. (3): ``gates`` ``[N, 4, h, ...]``, the pre-activations of o, f, i, g in
    that order (K^is * x + K^ss * h_prev), and the previous cell ``[N, h, ...]`` -> the new
    hidden state and cell, ``[N, h, ...]`` each: ``c = sigma(f) c_prev + sigma(i) tanh(g)``,
    ``h = sigma(o) tanh(c)``."""
    o, f, i, g = gates.unbind(1)
    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(cell), cell


def skew(x: torch.Tensor) -> torch.Tensor:
    """§3.2, Fig. 3: each diagonal of the map becomes a column; row r shifted right by r, zeros
    elsewhere: ``[N, C, H, W]`` -> ``[N, C, H, W + H - 1]``."""
    n, c, height, width = x.shape
    source = torch.arange(width + height - 1, device=x.device)[None, :] - torch.arange(height, device=x.device)[:, None]
    inside = (source >= 0) & (source < width)  # [H, W + H - 1]
    index = source.clamp(0, width - 1).expand(n, c, height, width + height - 1)
    return torch.where(inside, x.gather(3, index), x.new_zeros(()))


def unskew(x: torch.Tensor, width: int) -> torch.Tensor:
    """The inverse of :func:`skew`: row r shifted left by r and cropped to ``width``:
    ``[N, C, H, width + H - 1]`` -> ``[N, C, H, width]``."""
    n, c, height, skewed = x.shape
    if skewed != width + height - 1:
        raise ValueError(f"unskew: a map {skewed} wide is not a skewed {height}x{width} map")
    index = torch.arange(width, device=x.device)[None, :] + torch.arange(height, device=x.device)[:, None]
    return x.gather(3, index.expand(n, c, height, width))


# ----------------------------------------------------------------------------------------------
# The models
# ----------------------------------------------------------------------------------------------


class ResidualBlock(nn.Module):
    """Fig. 5 (left): ``x + c3(ReLU(c2(ReLU(c1(ReLU(x))))))`` with ``c1`` 1x1 2h -> h, ``c2`` 3x3
    mask B h -> h, ``c3`` 1x1 h -> 2h (the 1x1s mask B with colour groups on RGB data).
    ``[N, 2h, H, W]`` -> same."""

    def __init__(self, h: int, colours: int) -> None:
        super().__init__()
        self.c1 = _pointwise(2 * h, h, colours)
        groups = contiguous_groups(h, colours)
        self.c2 = MaskedConv2d(groups, groups, (3, 3), "B", padding=(1, 1))
        self.c3 = _pointwise(h, 2 * h, colours)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c3(F.relu(self.c2(F.relu(self.c1(F.relu(x))))))
        return x + y


class PixelCNN(_Twin):
    """PixelCNN (§3.5): ``inp`` (7x7 mask A, C -> 2h), ``nblocks`` :class:`ResidualBlock` s
    (``blocks.{k}.c1/c2/c3``), the output stack ``o1``/``o2``. ``rgb``: 3x32x32 images of
    ``levels`` values (M2: 256) with R -> G -> B masks on every convolution, else binary grey
    images (M1). ``forward``: ``[N, C, H, W]`` integers -> ``[N, C * P, H, W]`` logits."""

    def __init__(self, h: int, rgb: bool, nblocks: int = 7, levels: int | None = None) -> None:
        channels = 3 if rgb else 1
        super().__init__(h, channels, levels if levels is not None else (256 if rgb else 2))
        if nblocks < 0:
            raise ValueError(f"nblocks must be >= 0, got {nblocks}")
        self.blocks = nn.ModuleList(ResidualBlock(h, channels) for _ in range(nblocks))
        self._head()

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class RowLSTM(_Twin):
    """Row LSTM (§3.1, Eq. 3) on binary grey images, one layer: ``inp``; ``i2s``, K^is, 1x3
    mask B along the row (2h -> 4h, the whole map at once); ``s2s``, K^ss, a 1x3 ``Conv1d`` over
    the row above's hidden state (h -> 4h, unmasked); the rows scanned top to bottom from a zero
    state (h_0 = c_0 = 0); ``proj`` 1x1 h -> 2h plus the identity; the output stack.
    ``forward``: ``[N, 1, H, W]`` integers -> ``[N, 1, H, W]`` logits."""

    def __init__(self, h: int) -> None:
        super().__init__(h, 1, 2)
        one = contiguous_groups
        self.i2s = MaskedConv2d(one(2 * h, 1), one(4 * h, 1), (1, 3), "B", padding=(0, 1))
        self.s2s = nn.Conv1d(h, 4 * h, 3, padding=1)
        self.proj = nn.Conv2d(h, 2 * h, 1)
        self._head()

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The LSTM's hidden states: ``[N, 2h, H, W]`` -> ``[N, h, H, W]``."""
        gates = self.i2s(x)  # [N, 4h, H, W]
        n, _, height, width = gates.shape
        h = self.h
        hidden = gates.new_zeros(n, h, width)
        cell = gates.new_zeros(n, h, width)
        rows = []
        for r in range(height):
            z = gates[:, :, r] + self.s2s(hidden)  # [N, 4h, W]
            hidden, cell = lstm_cell(z.view(n, 4, h, width), cell)
            rows.append(hidden)
        return torch.stack(rows, dim=2)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(self.hidden(x))


class DiagBiLSTM(_Twin):
    """Diagonal BiLSTM (§3.2, Fig. 3/4) on binary grey images, one layer, both directions in
    one grouped convolution each (``groups=2``: the left-to-right direction's channels, then the
    right-to-left one's):

    - the map x (``[N, 2h, H, W]``) and its mirror image are skewed (:func:`skew`, row r shifted
      right by r: ``W -> W + H - 1`` columns);
    - ``i2s``, K^is, 1x1 (2 x 2h -> 2 x 4h; the data is grey, so mask B hides nothing) on the
      skewed maps: the padding positions get K^is's bias, the "bias-driven padding";
    - the columns scanned left to right from a zero state, ``s2s``, K^ss, a 2-tap ``Conv1d``
      over the previous column's hidden state (2 x h -> 2 x 4h), one zero row on top, so that
      row i reads rows i - 1 and i (in the image, pixel (i, j) reads (i - 1, j) and (i, j - 1));
    - unskewed; the right-to-left states mirrored back and shifted down one row (a zero row on
      top), so that row i sees only rows < i of them: no pixel sees itself or what follows it;
    - the two added, ``proj`` 1x1 h -> 2h plus the identity, the output stack.

    ``forward``: ``[N, 1, H, W]`` integers -> ``[N, 1, H, W]`` logits.
    """

    def __init__(self, h: int) -> None:
        super().__init__(h, 1, 2)
        self.i2s = nn.Conv2d(4 * h, 8 * h, 1, groups=2)
        self.s2s = nn.Conv1d(2 * h, 8 * h, 2, groups=2)
        self.proj = nn.Conv2d(h, 2 * h, 1)
        self._head()

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Both directions' hidden states summed: ``[N, 2h, H, W]`` -> ``[N, h, H, W]``."""
        n, _, height, width = x.shape
        h = self.h
        both = torch.cat([skew(x), skew(x.flip(3))], dim=1)  # [N, 4h, H, W + H - 1]
        gates = self.i2s(both)  # [N, 8h, H, W + H - 1]
        hidden = gates.new_zeros(n, 2 * h, height)
        cell = gates.new_zeros(n, 2, h, height)
        columns = []
        for t in range(gates.shape[3]):
            z = gates[:, :, :, t] + self.s2s(F.pad(hidden, (1, 0)))  # [N, 8h, H]
            state, cell = lstm_cell(z.view(n, 2, 4, h, height).transpose(1, 2), cell)  # [N, 2, h, H]
            hidden = state.reshape(n, 2 * h, height)
            columns.append(hidden)
        states = unskew(torch.stack(columns, dim=3), width)  # [N, 2h, H, W]
        left, right = states[:, :h], states[:, h:].flip(3)
        shifted = F.pad(right, (0, 0, 1, 0))[:, :, :height]  # down one row
        return left + shifted

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(self.hidden(x))


# ----------------------------------------------------------------------------------------------
# Building and loading
# ----------------------------------------------------------------------------------------------


def build(spec: str, h: int | None = None, nblocks: int | None = None) -> nn.Module:
    """A fresh model of benchmark spec ``spec`` (``"m1"``..``"m4"``, see :data:`SPECS`) at
    width ``h`` (default the spec's: 32, 64, 32, 16) (and, for the PixelCNN specs, ``nblocks`` residual blocks, default the spec's
    7), with PyTorch's default initialisation."""
    name = spec.lower()
    if name not in SPECS:
        raise ValueError(f"the twin has the specs {', '.join(SPECS)}, not {spec!r}")
    architecture, rgb, width, depth = SPECS[name]
    h = width if h is None else h
    if architecture == "pixel-cnn":
        return PixelCNN(h, rgb, depth if nblocks is None else nblocks)
    if nblocks not in (None, 1):
        raise ValueError(f"{name} has one LSTM layer, not {nblocks}")
    return RowLSTM(h) if architecture == "row-lstm" else DiagBiLSTM(h)


def _from_config(config: dict) -> nn.Module:
    """The twin's model for a pixelrnn model config (a run's ``config.json["model"]``, or an
    export's ``pixelrnn.model`` metadata), refused as ``pixelrnn export`` refuses it when the
    twin has no such model (``check_twin`` in ``interop/pytorch.rs``)."""
    image = config.get("image", {})
    h = config.get("hidden_channels")
    architecture = config.get("architecture")
    channels, levels = image.get("channels"), image.get("levels")
    expected = {
        "residual": True,
        "skip": False,
        "output_hidden_channels": None if h is None else 2 * h,
        "first_kernel": 7,
        "cnn_kernel": 3,
        "row_kernel": 3,
        "output": "softmax",
        "classes": None,
    }
    if architecture != "pixel-cnn":
        expected["num_layers"] = 1
    if architecture == "diagonal-bilstm":
        expected["diagonal_padding"] = "bias"
    found = dict(config)
    found.setdefault("output", "softmax")
    found.setdefault("classes", None)
    found.setdefault("diagonal_padding", "zero")
    wrong = [f"{k} {found.get(k)!r} (the twin: {v!r})" for k, v in expected.items() if found.get(k) != v]
    if architecture not in ("pixel-cnn", "row-lstm", "diagonal-bilstm"):
        wrong.insert(0, f"architecture {architecture!r}")
    elif architecture != "pixel-cnn" and (channels, levels) != (1, 2):
        wrong.append(f"{channels} channels of {levels} levels (the twin's LSTMs: binary grey images)")
    elif (channels, levels == 2) not in ((1, True), (3, False)):
        wrong.append(f"{channels} channels of {levels} levels (the twin: binary grey or RGB images)")
    if not isinstance(h, int) or h < 1:
        wrong.append(f"hidden_channels {h!r}")
    if architecture == "pixel-cnn" and not (isinstance(config.get("num_layers"), int) and config["num_layers"] >= 0):
        wrong.append(f"num_layers {config.get('num_layers')!r}")
    if wrong:
        raise ValueError(
            "the PyTorch twin has no such model (it defines M1-M4 of docs/bench-specs.md at any width): " + "; ".join(wrong)
        )
    if architecture == "pixel-cnn":
        return PixelCNN(h, channels == 3, config["num_layers"], levels)
    return RowLSTM(h) if architecture == "row-lstm" else DiagBiLSTM(h)


def _infer(shapes: dict[str, tuple[int, ...]]) -> nn.Module:
    """The twin's model a state dict is, from its names and shapes (as ``infer_config`` in
    ``interop/pytorch.rs``): ``inp.weight [2h, C, 7, 7]`` gives h and C; ``blocks.*`` a PixelCNN
    (its depth the blocks present), else ``s2s.weight`` ``[4h, h, 3]`` a Row LSTM and ``[8h, h,
    2]`` a Diagonal BiLSTM; an RGB PixelCNN's levels are ``o2.weight``'s outputs / 3."""
    unknown = "these tensors are not the PyTorch twin's (no inp.weight [2h, 1 or 3, 7, 7] with blocks.* or s2s.weight)"
    inp = shapes.get("inp.weight")
    if inp is None or len(inp) != 4 or inp[0] < 2 or inp[0] % 2 or inp[1] not in (1, 3):
        raise ValueError(unknown)
    h, rgb = inp[0] // 2, inp[1] == 3
    blocks = 0
    while f"blocks.{blocks}.c1.weight" in shapes:
        blocks += 1
    s2s = shapes.get("s2s.weight")
    if blocks > 0:
        levels = None  # binary, or RGB's 256 when o2.weight does not say otherwise
        out = shapes.get("o2.weight", (0,))[0]
        if rgb and out % 3 == 0 and out // 3 > 2:
            levels = out // 3
        return PixelCNN(h, rgb, blocks, levels)
    if s2s is not None and len(s2s) == 3 and s2s[2] == 3:
        return RowLSTM(h)
    if s2s is not None and len(s2s) == 3 and s2s[2] == 2:
        return DiagBiLSTM(h)
    raise ValueError(unknown)


def from_state_dict(state_dict: dict, model_config: dict | None = None) -> nn.Module:
    """The twin's model holding ``state_dict`` (names -> tensors or arrays), loaded strictly:
    every tensor of the model present with its shape, nothing else, and every ``*.mask`` this
    twin's own (R -> G -> B, 1 = visible; a different masking convention is refused). The model
    is ``model_config``'s (a pixelrnn model config) if given, else inferred from the names and
    shapes."""
    tensors = {name: value if torch.is_tensor(value) else torch.as_tensor(np.asarray(value)) for name, value in state_dict.items()}
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    model = _from_config(model_config) if model_config is not None else _infer(shapes)
    expected = model.state_dict()
    problems = [f"missing {name} {tuple(t.shape)}" for name, t in expected.items() if name not in tensors]
    problems += [f"unexpected {name}" for name in tensors if name not in expected]
    problems += [
        f"{name} has shape {shapes[name]}, the model needs {tuple(t.shape)}"
        for name, t in expected.items()
        if name in tensors and shapes[name] != tuple(t.shape)
    ]
    if not problems:
        problems = [
            f"{name} is not this twin's mask (another masking convention?)"
            for name, t in expected.items()
            if name.endswith(".mask") and not torch.equal(tensors[name].to(t.dtype), t)
        ]
    if problems:
        raise ValueError(f"the tensors do not fit the twin's {type(model).__name__}(h={model.h}): " + "; ".join(problems))
    model.load_state_dict({name: t.to(torch.float32) for name, t in tensors.items()}, strict=True)
    return model


# ----------------------------------------------------------------------------------------------
# safetensors, read and written here (no safetensors package needed)
# ----------------------------------------------------------------------------------------------

_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2"}


def read_safetensors(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors (float arrays) and the ``__metadata__`` of a safetensors file: an 8-byte
    little-endian header length, a JSON header ``{name: {"dtype", "shape", "data_offsets":
    [begin, end]}}`` (offsets into the data after the header), then the data."""
    data = bytes(data)
    if len(data) < 8:
        raise ValueError("not a safetensors file: shorter than its header length")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError(f"not a safetensors file: a header of {size} bytes in {len(data)}")
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not a safetensors file: {e}") from None
    body = memoryview(data)[8 + size :]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, entry in header.items():
        dtype = entry.get("dtype")
        if dtype not in _DTYPES:
            raise ValueError(f"tensor {name} has dtype {dtype}: the twin reads float32 (F32, or F64/F16)")
        shape = tuple(entry["shape"])
        begin, end = entry["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= len(body) or end - begin != count * np.dtype(_DTYPES[dtype]).itemsize:
            raise ValueError(f"tensor {name}: data_offsets {begin}..{end} do not hold {dtype} {list(shape)}")
        tensors[name] = np.frombuffer(body[begin:end], dtype=_DTYPES[dtype]).astype(np.float32).reshape(shape)
    return tensors, dict(metadata)


def write_safetensors(tensors: dict[str, np.ndarray | torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """safetensors bytes of ``tensors`` as F32 (in name order) with ``metadata`` (strings); the
    header is padded with spaces to a multiple of 8 bytes."""
    header: dict = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        value = tensors[name]
        array = value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    return len(encoded).to_bytes(8, "little") + encoded + b"".join(chunks)


def from_safetensors(data: bytes, model_config: dict | None = None) -> nn.Module:
    """The twin's model of a safetensors file in the twin's layout (``pixelrnn export --layout
    pytorch``, ``Model.export("pytorch")``, or :func:`to_safetensors`): see
    :func:`from_state_dict`. The model is ``model_config``'s if given, else the file's
    ``pixelrnn.model`` metadata's, else inferred from the tensors."""
    tensors, metadata = read_safetensors(data)
    if metadata.get("pixelrnn.layout", "pytorch") != "pytorch":
        raise ValueError(
            f"the file is in pixelrnn's {metadata['pixelrnn.layout']} layout: export it with the layout pytorch, "
            "or read it with native_from_safetensors"
        )
    if model_config is None and "pixelrnn.model" in metadata:
        model_config = json.loads(metadata["pixelrnn.model"])
    return from_state_dict(tensors, model_config)


def to_safetensors(module: nn.Module) -> bytes:
    """``module.state_dict()`` (masks included) as safetensors F32 bytes, in the layout that
    ``pixelrnn import`` reads (its metadata says ``pixelrnn.layout`` = ``pytorch``; the model is
    inferred from the tensors there as here)."""
    return write_safetensors(module.state_dict(), {"format": "pt", "pixelrnn.layout": "pytorch"})


# ----------------------------------------------------------------------------------------------
# The successors' parts, in pixelrnn's native layout: Gated PixelCNN, the discretized logistic
# mixture, class conditioning
# ----------------------------------------------------------------------------------------------

#: PixelCNN++'s lower bound of the log-scales (``MIN_LOG_SCALE`` in
#: ``distribution/logistic_mixture.rs``).
MIN_LOG_SCALE = -7.0


def _softplus(x: torch.Tensor) -> torch.Tensor:
    """``log(1 + e^x)``, stable everywhere, as pixelrnn writes it: ``max(x, 0) + log1p(e^-|x|)``."""
    return F.relu(x) + torch.log1p(torch.exp(-x.abs()))


def _log_expm1(d: torch.Tensor) -> torch.Tensor:
    """``log(e^d - 1)`` for d > 0: ``ln d + d / 2`` below 1e-3 (its series), ``d + log(1 - e^-d)``
    above; each branch sees only inputs where it is finite."""
    small = 1e-3
    below = d.clamp(max=small)
    above = d.clamp(min=small)
    series = torch.log(below) + below / 2.0
    exact = above + torch.log1p(-torch.exp(-above))
    return torch.where(d < small, series, exact)


def _log_softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``log_softmax`` as pixelrnn's backend computes it: ``s - log(sum(e^s))``, ``s = x - max``."""
    shifted = x - x.detach().amax(dim=dim, keepdim=True)
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


class LogisticMixture:
    """PixelCNN++'s discretized logistic mixture (Salimans et al. 2017, §2.1-2.2), as pixelrnn's
    ``distribution/logistic_mixture.rs`` computes it: each sub-pixel's value, scaled to [-1, 1]
    (``2 v / (levels - 1) - 1``), is a mixture of K logistics discretized into ``levels`` bins of
    width ``2 / (levels - 1)``, the first and last bins taking the tails (§2.1). The mean of
    channel c's components moves with the values already known at the same pixel (§2.2):
    ``mu_c,k + sum_{j<c} tanh(a_c,j,k) x_j``.

    Layout: channel c's ``P = K (3 + C - 1)`` parameters are the contiguous block c of the output
    (``[N, C * P, H, W]``), within it ``[K logits | K means | K log-scales | (C - 1) x K
    coefficients]``, coefficient block j scaling channel j's value (read by channels c > j only).
    Deviation from PixelCNN++ (pixelrnn's): every channel has its own mixture weights.

    Log-scales are clamped below at :data:`MIN_LOG_SCALE`. The NLL is computed in log space for
    every bin: ``log F(upper)`` for value 0, ``log(1 - F(lower))`` for ``levels - 1``, and
    ``log(sigmoid(u) - sigmoid(l)) = l + log(e^(u - l) - 1) - softplus(u) - softplus(l)`` between.
    """

    def __init__(self, components: int, levels: int, channels: int) -> None:
        if components < 1 or levels < 3 or channels < 1:
            raise ValueError(f"a mixture of {components} components on {channels} channels of {levels} levels")
        self.components = components
        self.levels = levels
        self.channels = channels

    @property
    def params_per_subpixel(self) -> int:
        """``K (3 + C - 1)``."""
        return self.components * (3 + max(self.channels - 1, 0))

    def nll_per_subpixel(self, params: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``-log p(x_i | x_<i)`` of every sub-pixel in nats: ``params [N, C * P, H, W]``, targets
        ``[N, C, H, W]`` integers -> ``[N, C, H, W]``."""
        n, c, height, width = targets.shape
        k = self.components
        p = params.reshape(n, c, self.params_per_subpixel, height, width)

        def block(i: int) -> torch.Tensor:
            return p[:, :, i * k : (i + 1) * k]  # [N, C, K, H, W]

        logits, mean, log_scales = block(0), block(1), block(2).clamp(min=MIN_LOG_SCALE)
        top = float(self.levels - 1)
        x = targets.to(params.dtype) * (2.0 / top) - 1.0  # [N, C, H, W]
        for j in range(c - 1):
            # §2.2: only channels c > j read channel j's value.
            later = (torch.arange(c, device=params.device) > j).to(params.dtype).view(1, c, 1, 1, 1)
            mean = mean + torch.tanh(block(3 + j)) * x[:, j : j + 1].unsqueeze(2) * later
        centered = x.unsqueeze(2) - mean  # [N, C, K, H, W]
        inverse = torch.exp(-log_scales)
        half = 1.0 / top
        upper = inverse * (centered + half)  # the bin's upper edge, standardized
        lower = inverse * (centered - half)
        first = -_softplus(-upper)  # log F(upper): value 0 takes the left tail
        last = -_softplus(lower)  # log(1 - F(lower)): value levels - 1 takes the right tail
        middle = lower + _log_expm1(inverse * (2.0 * half)) - _softplus(upper) - _softplus(lower)
        values = targets.long().unsqueeze(2).expand(n, c, k, height, width)
        log_mass = torch.where(values == 0, first, torch.where(values == self.levels - 1, last, middle))
        joint = log_mass + _log_softmax(logits, 2)  # [N, C, K, H, W]
        top_joint = joint.detach().amax(dim=2, keepdim=True)
        log_p = torch.log(torch.exp(joint - top_joint).sum(dim=2, keepdim=True)) + top_joint
        return -log_p.reshape(n, c, height, width)

    def sample(
        self, params: torch.Tensor, previous: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One value of a sub-pixel of channel ``previous.shape[1]`` per row: its parameters
        ``[N, P]`` and the raw values of the channels before it at the same pixel ``[N, c]`` ->
        ``[N]`` long. The component first (by the mixture weights), then the logistic's quantile
        at a uniform, rounded to its bin (the end bins take the tails), as pixelrnn's ``draw``."""
        k = self.components
        top = float(self.levels - 1)
        chosen = torch.multinomial(torch.softmax(params[:, :k], dim=1), 1, generator=generator)  # [N, 1]

        def pick(i: int) -> torch.Tensor:
            return params[:, i * k : (i + 1) * k].gather(1, chosen).squeeze(1)  # [N]

        mean = pick(1)
        for j in range(previous.shape[1]):
            mean = mean + torch.tanh(pick(3 + j)) * (previous[:, j].to(params.dtype) * (2.0 / top) - 1.0)
        scale = torch.exp(pick(2).clamp(min=MIN_LOG_SCALE))
        u = torch.rand(params.shape[0], generator=generator, dtype=params.dtype, device=params.device)
        x = mean + scale * (torch.log(u) - torch.log1p(-u))
        # Bin v holds (edge v - 1, edge v] with edge v = (2v + 1) / top - 1.
        return torch.nan_to_num(torch.ceil(((x + 1.0) * top - 1.0) / 2.0), nan=0.0).clamp(0.0, top).long()


def gate(x: torch.Tensor) -> torch.Tensor:
    """The gated unit of Gated PixelCNN (van den Oord et al. 2016, §2.1, Eq. 2), ``tanh(a) *
    sigmoid(b)`` of the two halves ``[a | b]`` of the channels: ``[N, 2n, H, W]`` -> ``[N, n, H,
    W]``."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def _native_pointwise(cin: int, cout: int, colours: int) -> MaskedConv2d:
    """pixelrnn's pointwise layer: a 1x1 mask B convolution between contiguous colour groups
    (all visible for grey data), its mask kept out of the state dict."""
    groups = contiguous_groups
    return MaskedConv2d(groups(cin, colours), groups(cout, colours), (1, 1), "B", persistent=False)


class NativeResidualBlock(nn.Module):
    """PixelRNN's PixelCNN block (§3.5, Fig. 5 left) under pixelrnn's native names: ``reduce``
    1x1 2h -> h, ``spatial`` k x k mask B h -> h, ``expand`` 1x1 h -> 2h (mask B with colour
    groups), each after a ReLU, plus the input when ``residual``. ``[N, 2h, H, W]`` -> same."""

    def __init__(self, h: int, colours: int, kernel: int = 3, residual: bool = True) -> None:
        super().__init__()
        groups = contiguous_groups(h, colours)
        self.reduce = _native_pointwise(2 * h, h, colours)
        self.spatial = MaskedConv2d(groups, groups, (kernel, kernel), "B", (kernel // 2, kernel // 2), persistent=False)
        self.expand = _native_pointwise(h, 2 * h, colours)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(F.relu(self.spatial(F.relu(self.reduce(F.relu(x))))))
        return x + y if self.residual else y


class VerticalStack(nn.Module):
    """Gated PixelCNN's vertical stack (van den Oord et al. 2016, §2.2, Fig. 2 left half): what
    every pixel sees of the rows above it, without the blind spot. ``input``, k1 x k1 with the
    rows above the centre only visible (``"above"``: the down-shift), C -> 2h; per layer
    ``convs.{l}``, k x k with the rows above and the centre row visible (``"vertical"``), 2h ->
    4h, gated into the next map. No colour groups (every channel of the rows above is known) and
    no residual (as in the paper).

    ``forward``: the scaled image ``[N, C, H, W]`` -> the L pre-activations ``p_l`` ``[N, 4h, H,
    W]`` (``v_0 = input(x)``, ``p_l = convs[l](v_l)``, ``v_(l+1) = gate(p_l)``); each at row r
    describes the image's rows < r."""

    def __init__(self, channels: int, width: int, first_kernel: int = 7, kernel: int = 3, layers: int = 1) -> None:
        super().__init__()
        k1 = first_kernel
        self.input = MaskedConv2d([0] * channels, [0] * width, (k1, k1), "above", (k1 // 2, k1 // 2), persistent=False)
        pad = (kernel // 2, kernel // 2)
        self.convs = nn.ModuleList()
        for _ in range(layers):
            self.convs.append(MaskedConv2d([0] * width, [0] * (2 * width), (kernel, kernel), "vertical", pad, persistent=False))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        v = self.input(x)  # [N, 2h, H, W]
        out = []
        for conv in self.convs:
            p = conv(v)  # [N, 4h, H, W]
            v = gate(p)
            out.append(p)
        return out


class GatedLayer(nn.Module):
    """One horizontal layer of Gated PixelCNN (van den Oord et al. 2016, §2.1-2.2, Fig. 2 right half):
    ``horizontal``, 1 x k mask B along the row (R -> G -> B colour groups), 2h -> 4h, plus
    ``link``, an unmasked 1x1 of the layer's vertical pre-activations (they describe rows above
    only), 4h -> 4h; gated; ``out``, 1x1 mask B 2h -> 2h; plus the input when ``residual``.
    Both halves of the 4h gate map follow the colour groups of the 2h map.

    ``forward(x, p)``: ``x [N, 2h, H, W]``, ``p [N, 4h, H, W]`` -> ``[N, 2h, H, W]``."""

    def __init__(self, h: int, colours: int, kernel: int = 3, residual: bool = True) -> None:
        super().__init__()
        width = 2 * h
        groups = contiguous_groups(width, colours)
        gates = groups + groups
        self.horizontal = MaskedConv2d(groups, gates, (1, kernel), "B", (0, kernel // 2), persistent=False)
        self.link = MaskedConv2d([0] * (2 * width), gates, (1, 1), None, persistent=False)
        self.out = _native_pointwise(width, width, colours)
        self.residual = residual

    def forward(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        pre = self.horizontal(x) + self.link(p)  # [N, 4h, H, W]
        y = self.out(gate(pre))  # [N, 2h, H, W]
        return x + y if self.residual else y


class NativeOutputStack(nn.Module):
    """Table 1's output stack under pixelrnn's native names: ReLU, ``hidden`` 1x1 2h -> d, ReLU,
    ``logits`` 1x1 d -> C * P (both mask B with colour groups). ``[N, 2h, H, W]`` -> ``[N, C * P,
    H, W]``."""

    def __init__(self, width: int, hidden: int, out: int, colours: int) -> None:
        super().__init__()
        self.hidden = _native_pointwise(width, hidden, colours)
        self.logits = _native_pointwise(hidden, out, colours)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(F.relu(self.hidden(F.relu(x))))


class ClassEmbedding(nn.Module):
    """Class conditioning (van den Oord et al. 2016, §2.3) as pixelrnn has it
    (``models/conditioning.rs``): one learned vector per (place, class), ``table [L + 1,
    classes, 2h]``, added to the trunk before layer l (place l) and before the output stack
    (place L). Deviation (pixelrnn's): the paper adds V^T y inside every gate. Starts at zero."""

    def __init__(self, places: int, classes: int, width: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(places, classes, width))

    def at(self, place: int, labels: torch.Tensor) -> torch.Tensor:
        """The vectors of ``labels`` (``[N]``) at ``place``: ``[N, 2h, 1, 1]``."""
        return self.table[place][labels][:, :, None, None]


def _output_head(config: dict) -> int | None:
    """The mixture's components K of a model config's ``output``, or ``None`` for the paper's
    softmax/sigmoid (``"softmax"`` or absent)."""
    output = config.get("output", "softmax")
    if output == "softmax":
        return None
    if isinstance(output, dict) and set(output) == {"mixture"} and isinstance(output["mixture"], dict):
        return output["mixture"].get("components")
    raise ValueError(f'output {output!r} (expected "softmax" or {{"mixture": {{"components": K}}}})')


def _native_problems(config: dict) -> list[str]:
    """What keeps the native twin from being ``config``'s model, if anything."""
    wrong = []
    architecture = config.get("architecture")
    if architecture not in ("pixel-cnn", "gated-pixel-cnn"):
        wrong.append(
            f"architecture {architecture!r} (the native twin has pixel-cnn and gated-pixel-cnn; "
            "the LSTMs' twin is the pytorch layout's RowLSTM and DiagBiLSTM)"
        )
    missing = [k for k in _REQUIRED if k not in config]
    if missing:
        wrong.append("missing " + ", ".join(missing))
        return wrong
    image = config["image"]
    sizes = ("channels", "height", "width", "levels")
    if not isinstance(image, dict) or not all(isinstance(image.get(k), int) and image[k] >= 1 for k in sizes):
        return wrong + [f"image {image!r}"]
    c, levels = image["channels"], image["levels"]
    if levels < 2:
        wrong.append(f"{levels} levels")
    for key in ("hidden_channels", "output_hidden_channels"):
        if not isinstance(config[key], int) or config[key] < c:
            wrong.append(f"{key} {config[key]!r} (at least the {c} colour channels)")
    if not isinstance(config["num_layers"], int) or config["num_layers"] < 0:
        wrong.append(f"num_layers {config['num_layers']!r}")
    for key in ("first_kernel", "cnn_kernel"):
        if not isinstance(config[key], int) or config[key] % 2 != 1:
            wrong.append(f"{key} {config[key]!r} (odd)")
    try:
        components = _output_head(config)
    except ValueError as e:
        return wrong + [str(e)]
    if components is not None and (not isinstance(components, int) or components < 1 or levels <= 2):
        wrong.append(f"a mixture of {components!r} on {levels} levels (the mixture models more than 2 levels)")
    classes = config.get("classes")
    if classes is not None and (not isinstance(classes, int) or classes < 2):
        wrong.append(f"classes {classes!r}")
    return wrong


_REQUIRED = (
    "image",
    "num_layers",
    "hidden_channels",
    "output_hidden_channels",
    "first_kernel",
    "cnn_kernel",
    "row_kernel",
    "residual",
    "skip",
)


class NativeModel(nn.Module):
    """pixelrnn's convolutional models (``models/mod.rs``, ``PixelRnn``) under its native tensor
    names (``pixelrnn export --layout native``), built from a pixelrnn model config (``config``,
    the JSON of a run's ``config.json["model"]``): a PixelCNN (``"pixel-cnn"``) or a Gated
    PixelCNN (``"gated-pixel-cnn"``), with or without skip connections, with the paper's output
    or the logistic mixture, unconditional or class-conditional. Masks are buffers outside the
    state dict.

    - ``input``: the k1 x k1 mask A convolution C -> 2h (§3.4; Deviation, pixelrnn's: Gated
      PixelCNN's first horizontal map is this one too, where the paper's reads the row only);
    - ``layers.{l}``: :class:`NativeResidualBlock` s or :class:`GatedLayer` s (the latter also
      read ``vertical``, a :class:`VerticalStack`);
    - ``skips.{l}`` (``skip``): 1x1 mask B 2h -> 2h of every layer's output, summed for the
      output stack in place of the last layer's output (§3.3);
    - ``output``: :class:`NativeOutputStack` to ``C * P`` parameters, P = 1 (sigmoid, binary
      images), ``levels`` (softmax) or the :class:`LogisticMixture`'s;
    - ``conditioning`` (``classes``): a :class:`ClassEmbedding` added before every layer and
      before the output stack (after the skip sum).

    ``forward(images, labels)``: ``[N, C, H, W]`` integers (and ``[N]`` labels for a conditional
    model) -> ``[N, C * P, H, W]``; ``nll(images, labels)`` -> ``[N]`` nats."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        problems = _native_problems(config)
        if problems:
            raise ValueError("the native twin has no such model: " + "; ".join(problems))
        self.config = json.loads(json.dumps(config))
        image = config["image"]
        c, levels = image["channels"], image["levels"]
        h, layers = config["hidden_channels"], config["num_layers"]
        k1, k = config["first_kernel"], config["cnn_kernel"]
        self.h, self.channels, self.levels = h, c, levels
        self.architecture = config["architecture"]
        components = _output_head(config)
        self.mixture = None if components is None else LogisticMixture(components, levels, c)
        self.classes = config.get("classes")
        if self.mixture is not None:
            params = self.mixture.params_per_subpixel
        else:
            params = 1 if levels == 2 else levels
        groups = contiguous_groups
        self.input = MaskedConv2d(groups(c, c), groups(2 * h, c), (k1, k1), "A", (k1 // 2, k1 // 2), persistent=False)
        gated = self.architecture == "gated-pixel-cnn"
        block = GatedLayer if gated else NativeResidualBlock
        self.layers = nn.ModuleList(block(h, c, k, config["residual"]) for _ in range(layers))
        self.skips = nn.ModuleList(_native_pointwise(2 * h, 2 * h, c) for _ in range(layers if config["skip"] else 0))
        self.output = NativeOutputStack(2 * h, config["output_hidden_channels"], c * params, c)
        self.vertical = VerticalStack(c, 2 * h, k1, k, layers) if gated else None
        self.conditioning = None if self.classes is None else ClassEmbedding(layers + 1, self.classes, 2 * h)

    def scale(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The network input for raw images (as :meth:`PixelCNN.scale`): the raw values for
        binary images, ``2 v / (levels - 1) - 1`` otherwise."""
        x = self._images(images).to(self.input.weight.dtype)
        if self.levels == 2:
            return x
        return x * torch.tensor(2.0 / (self.levels - 1), dtype=x.dtype) - 1.0

    def forward_scaled(self, x: torch.Tensor, labels: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """The output parameters of scaled input ``x`` ``[N, C, H, W]`` -> ``[N, C * P, H, W]``
        (``models/mod.rs``, ``forward_given``)."""
        labels = self._labels(labels, x.shape[0])

        def condition(t: torch.Tensor, place: int) -> torch.Tensor:
            return t if labels is None else t + self.conditioning.at(place, labels)

        links = None if self.vertical is None else self.vertical(x)  # L x [N, 4h, H, W]
        y = self.input(x)  # [N, 2h, H, W]
        skip_sum = None
        for index, layer in enumerate(self.layers):
            y = condition(y, index)
            y = layer(y) if links is None else layer(y, links[index])  # [N, 2h, H, W]
            if len(self.skips):
                s = self.skips[index](y)
                skip_sum = s if skip_sum is None else skip_sum + s
        return self.output(condition(y if skip_sum is None else skip_sum, len(self.layers)))

    def forward(self, images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """Every sub-pixel's output parameters: raw images ``[N, C, H, W]`` -> ``[N, C * P, H,
        W]``, channel c's P parameters the contiguous block c."""
        return self.forward_scaled(self.scale(images), labels)

    def nll_per_subpixel(self, params: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``-log p(x_i | x_<i)`` in nats: ``params [N, C * P, H, W]``, targets ``[N, C, H, W]``
        -> ``[N, C, H, W]``, under the model's output distribution."""
        if self.mixture is not None:
            return self.mixture.nll_per_subpixel(params, targets)
        return nll_per_subpixel(params, targets, self.levels)

    def nll(self, images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """The exact NLL of each image in nats (given its class for a conditional model):
        ``[N, C, H, W]`` integers (and ``[N]`` labels) -> ``[N]``."""
        targets = self._images(images)
        return self.nll_per_subpixel(self.forward(targets, labels), targets).flatten(1).sum(1)

    def _images(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(images, device=self.input.weight.device)
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"images must be [N, {self.channels}, H, W], got {tuple(x.shape)}")
        if x.is_floating_point() or x.dtype == torch.bool:
            raise TypeError(f"images must be integers (uint8 or long), got {x.dtype}")
        return x.long()

    def _labels(self, labels: torch.Tensor | np.ndarray | None, count: int) -> torch.Tensor | None:
        """``labels`` checked as pixelrnn's ``check_labels``: one class below ``classes`` per
        image for a conditional model, none for an unconditional one."""
        if self.classes is None:
            if labels is not None:
                raise ValueError("the model is not class-conditional: it takes no class label")
            return None
        if labels is None:
            raise ValueError(f"the model is class-conditional ({self.classes} classes): it needs each image's class label")
        y = torch.as_tensor(labels, device=self.input.weight.device)
        if y.shape != (count,) or y.is_floating_point():
            raise ValueError(f"{count} integer class labels needed, got {tuple(y.shape)} of {y.dtype}")
        y = y.long()
        if count and (int(y.min()) < 0 or int(y.max()) >= self.classes):
            raise ValueError(f"class labels must be in 0..{self.classes - 1}")
        return y


def native_config(
    architecture: str = "gated-pixel-cnn",
    image: tuple[int, int, int, int] = (3, 32, 32, 256),
    num_layers: int = 7,
    hidden_channels: int = 32,
    output_hidden_channels: int | None = None,
    components: int | None = None,
    classes: int | None = None,
    skip: bool = False,
    residual: bool = True,
    first_kernel: int = 7,
    cnn_kernel: int = 3,
) -> dict:
    """A pixelrnn model config (the JSON ``pixelrnn import`` reads) for :class:`NativeModel`:
    ``image`` is ``(channels, height, width, levels)``, ``output_hidden_channels`` defaults to
    2h, ``components`` a mixture's K (else the softmax/sigmoid), ``classes`` a conditional
    model's. The fields only the LSTMs read have the benchmark specs' values."""
    channels, height, width, levels = image
    config = {
        "architecture": architecture,
        "image": {"channels": channels, "height": height, "width": width, "levels": levels},
        "num_layers": num_layers,
        "hidden_channels": hidden_channels,
        "output_hidden_channels": 2 * hidden_channels if output_hidden_channels is None else output_hidden_channels,
        "first_kernel": first_kernel,
        "cnn_kernel": cnn_kernel,
        "row_kernel": 3,
        "residual": residual,
        "skip": skip,
        "learned_initial_state": True,
        "diagonal_padding": "zero",
    }
    if components is not None:
        config["output"] = {"mixture": {"components": components}}
    if classes is not None:
        config["classes"] = classes
    return config


#: The benchmark specs M5 and M6 (``docs/bench-specs.md``; ``Spec::model_config`` in
#: ``crates/pixelrnn/src/models/specs.rs``) as pixelrnn model configs for :class:`NativeModel`.
NATIVE_SPECS = {
    "m5": native_config("gated-pixel-cnn", num_layers=7, hidden_channels=32),
    "m6": native_config("pixel-cnn", num_layers=7, hidden_channels=64, components=10),
}


def build_native(spec: str | dict) -> NativeModel:
    """A fresh :class:`NativeModel` of benchmark spec ``"m5"`` or ``"m6"`` (see
    :data:`NATIVE_SPECS`), or of a pixelrnn model config dict, with PyTorch's default
    initialisation (a zero class embedding)."""
    if isinstance(spec, dict):
        return NativeModel(spec)
    name = spec.lower()
    if name not in NATIVE_SPECS:
        raise ValueError(f"the native twin has the specs {', '.join(NATIVE_SPECS)} (and any config), not {spec!r}")
    return NativeModel(NATIVE_SPECS[name])


def native_from_state_dict(state_dict: dict, model_config: dict) -> NativeModel:
    """The :class:`NativeModel` of ``model_config`` holding ``state_dict`` (native names ->
    tensors or arrays), loaded strictly: every tensor present with its shape, nothing else."""
    tensors = {n: v if torch.is_tensor(v) else torch.as_tensor(np.asarray(v)) for n, v in state_dict.items()}
    model = NativeModel(model_config)
    expected = model.state_dict()
    problems = [f"missing {name} {tuple(t.shape)}" for name, t in expected.items() if name not in tensors]
    problems += [f"unexpected {name}" for name in tensors if name not in expected]
    problems += [
        f"{name} has shape {tuple(tensors[name].shape)}, the model needs {tuple(t.shape)}"
        for name, t in expected.items()
        if name in tensors and tuple(tensors[name].shape) != tuple(t.shape)
    ]
    if problems:
        model_name = f"{model.architecture} (h={model.h})"
        raise ValueError(f"the tensors do not fit the native twin's {model_name}: " + "; ".join(problems))
    model.load_state_dict({name: t.to(torch.float32) for name, t in tensors.items()}, strict=True)
    return model


def native_from_safetensors(data: bytes, model_config: dict | None = None) -> NativeModel:
    """The :class:`NativeModel` of a safetensors file in pixelrnn's native layout (``pixelrnn
    export --layout native``, ``Model.export("pixelrnn")`` or :func:`native_to_safetensors`):
    the model is ``model_config``'s if given, else the file's ``pixelrnn.model`` metadata's."""
    tensors, metadata = read_safetensors(data)
    layout = metadata.get("pixelrnn.layout", "native")
    if layout != "native":
        raise ValueError(f"the file is in the {layout} layout: read it with from_safetensors")
    if model_config is None:
        if "pixelrnn.model" not in metadata:
            raise ValueError("no pixelrnn.model in the metadata: give the model config")
        model_config = json.loads(metadata["pixelrnn.model"])
    return native_from_state_dict(tensors, model_config)


def native_to_safetensors(model: NativeModel, metadata: dict[str, str] | None = None) -> bytes:
    """``model.state_dict()`` as safetensors F32 bytes in pixelrnn's native layout, with the
    metadata that ``pixelrnn import`` reads (``pixelrnn.layout`` = ``native``, ``pixelrnn.model``
    = the model config as JSON) and ``metadata`` (strings) beside it."""
    config = json.dumps(model.config, separators=(",", ":"))
    meta = {"format": "pt", "pixelrnn.layout": "native", "pixelrnn.model": config}
    meta.update(metadata or {})
    return write_safetensors(model.state_dict(), meta)
