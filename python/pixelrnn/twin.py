"""The PyTorch twin of pixelrnn's models: the same networks, computing the same numbers (up to
float rounding), as ``torch.nn.Module`` s whose ``state_dict()`` is the layout that ``pixelrnn
export --layout pytorch`` writes and ``pixelrnn import`` reads
(``crates/pixelrnn/src/interop/pytorch.rs``).

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

This module imports only ``torch`` and ``numpy`` (and the standard library's ``json``), so it
can be loaded on its own from its path (``importlib``), without the package's native module::

    from pixelrnn import twin
    model = twin.from_safetensors(open("model.safetensors", "rb").read())
    nats = model.nll(images)            # images: [N, C, H, W] uint8 -> [N] nats
    data = twin.to_safetensors(model)   # for `pixelrnn import`
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
    """
    kh, kw = kernel
    cy, cx = kh // 2, kw // 2
    visible = np.zeros((len(out_groups), len(in_groups), kh, kw), dtype=np.float32)
    if kind is None:
        visible[:] = 1.0
        return torch.from_numpy(visible)
    if kind not in ("A", "B"):
        raise ValueError(f'mask kind must be "A", "B" or None, got {kind!r}')
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
    kernel (PyTorch's default for convolutions, and pixelrnn's).
    """

    def __init__(
        self,
        in_groups: list[int],
        out_groups: list[int],
        kernel: tuple[int, int],
        kind: str | None,
        padding: tuple[int, int] = (0, 0),
    ) -> None:
        super().__init__()
        kh, kw = kernel
        cin, cout = len(in_groups), len(out_groups)
        bound = (cin * kh * kw) ** -0.5
        self.weight = nn.Parameter(torch.empty(cout, cin, kh, kw).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(cout).uniform_(-bound, bound))
        self.register_buffer("mask", visibility_mask(kind, kernel, in_groups, out_groups))
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
        raise ValueError(f"the file is in pixelrnn's {metadata['pixelrnn.layout']} layout: export it with the layout pytorch")
    if model_config is None and "pixelrnn.model" in metadata:
        model_config = json.loads(metadata["pixelrnn.model"])
    return from_state_dict(tensors, model_config)


def to_safetensors(module: nn.Module) -> bytes:
    """``module.state_dict()`` (masks included) as safetensors F32 bytes, in the layout that
    ``pixelrnn import`` reads (its metadata says ``pixelrnn.layout`` = ``pytorch``; the model is
    inferred from the tensors there as here)."""
    return write_safetensors(module.state_dict(), {"format": "pt", "pixelrnn.layout": "pytorch"})
