"""The PyTorch twin (`pixelrnn.twin`): the same NLL as pixelrnn's own models for M1-M4 trained
here, its safetensors both ways (`Model.export("pytorch")` in, `pixelrnn import` out), its
masks, and its causality (§3.4: no sub-pixel's logits read that sub-pixel or any after it).
The same for the successors' parts in pixelrnn's native layout (`NativeModel`: Gated PixelCNN,
the discretized logistic mixture, class conditioning; `Model.export("pixelrnn")` in)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pixelrnn  # noqa: E402
from conftest import run_cli, tiny_options  # noqa: E402
from pixelrnn import twin  # noqa: E402

TWIN_PATH = Path(twin.__file__)

# The runs: the smallest models of each spec the twin has (residual, no skip, d = 2h, one LSTM
# layer, a zero initial Row LSTM state, the bias-driven Diagonal BiLSTM padding).
RUNS = {
    "m1": dict(model="pixel-cnn", layers=2, hidden=4, output_hidden=8),
    "m2": dict(model="pixel-cnn", layers=1, hidden=3, output_hidden=6, dataset="cifar10", valid_size=10),
    "m3": dict(model="row-lstm", layers=1, hidden=4, output_hidden=8, zero_initial_state=True),
    "m4": dict(model="diagonal-bilstm", layers=1, hidden=4, output_hidden=8, diagonal_padding="bias"),
}
TWIN_CLASS = {"m1": twin.PixelCNN, "m2": twin.PixelCNN, "m3": twin.RowLSTM, "m4": twin.DiagBiLSTM}


def write_small_cifar(folder: Path, per_file: int = 12) -> Path:
    """CIFAR-10's five training batches in its binary format (a label byte, then the 3x32x32
    planes), ``per_file`` records each: colour gradients placed by the record's index."""
    folder.mkdir(parents=True, exist_ok=True)
    r, c = np.mgrid[0:32, 0:32]
    for k in range(5):
        records = []
        for i in range(per_file):
            n = k * per_file + i
            planes = np.stack([(r * 8 + n) % 256, (c * 8 + 3 * n) % 256, ((r + c) * 4 + 7 * n) % 256])
            records.append(np.concatenate([[n % 10], planes.reshape(-1)]).astype(np.uint8))
        (folder / f"data_batch_{k + 1}.bin").write_bytes(np.concatenate(records).tobytes())
    return folder


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory) -> Path:
    return write_small_cifar(tmp_path_factory.mktemp("data") / "cifar10")


def data_for(spec: str, data_dir: Path, cifar_dir: Path) -> Path:
    return cifar_dir if spec == "m2" else data_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir, cifar_dir) -> dict:
    """Each spec trained for 3 steps (weights away from their initialisation)."""
    out = {}
    for spec, options in RUNS.items():
        path = tmp_path_factory.mktemp("twin") / spec
        extra = dict(options, steps=3, batch_size=4, no_skip=True)
        pixelrnn.train(path, progress=False, **tiny_options(data_for(spec, data_dir, cifar_dir), **extra))
        out[spec] = pixelrnn.load(path)
    return out


def images_for(model, seed: int = 0) -> np.ndarray:
    """Uniformly random images and the model's own samples, (5, C, H, W) uint8."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, model.levels, size=(3,) + model.shape, dtype=np.uint8)
    return np.concatenate([noise, model.sample(2, seed=seed + 1)])


@pytest.mark.parametrize("spec", list(RUNS))
def test_the_twin_computes_the_models_nll(runs, spec):
    model = runs[spec]
    torched = model.to_torch()
    assert type(torched) is TWIN_CLASS[spec] and torched.h == RUNS[spec]["hidden"]
    images = images_for(model)
    expected = model.nll(images)
    with torch.no_grad():
        got = torched.nll(images).double().numpy()
        from_bytes = twin.from_safetensors(model.export("pytorch")).nll(torch.from_numpy(images)).double().numpy()
        per_subpixel = twin.nll_per_subpixel(torched(images), torch.from_numpy(images).long(), torched.levels)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(from_bytes, got, rtol=1e-6)
    # Sub-pixel by sub-pixel too: a difference in one place cannot hide in the sum.
    np.testing.assert_allclose(per_subpixel.double().numpy(), model.score(images, per_channel=True), atol=2e-5)


@pytest.mark.parametrize("spec", list(RUNS))
def test_the_masks_are_the_twins_own_and_survive_a_round_trip(runs, spec):
    exported = runs[spec].export("pytorch")
    tensors, metadata = twin.read_safetensors(exported)
    assert metadata["pixelrnn.layout"] == "pytorch"
    options = RUNS[spec]
    fresh = twin.build(spec, options["hidden"], options["layers"]).state_dict()
    assert sorted(tensors) == sorted(fresh)
    for name in (n for n in fresh if n.endswith(".mask")):
        np.testing.assert_array_equal(tensors[name], fresh[name].numpy(), err_msg=name)
    # The twin's own bytes give back the same tensors and the same model.
    loaded = twin.from_safetensors(exported)
    again = twin.from_safetensors(twin.to_safetensors(loaded))
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name
    images = images_for(runs[spec], seed=5)
    with torch.no_grad():
        assert torch.equal(loaded.nll(images), again.nll(images))


@pytest.mark.parametrize("spec", list(RUNS))
def test_a_model_made_in_pytorch_imports_into_pixelrnn(cli, data_dir, cifar_dir, tmp_path, spec):
    torch.manual_seed(7)
    made = twin.build(spec, 3, 1)
    with torch.no_grad():  # away from PyTorch's initialisation, as after training
        for p in made.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "weights.safetensors"
    path.write_bytes(twin.to_safetensors(made))
    dataset = "cifar10" if spec == "m2" else "binarized-mnist"
    args = ["import", path, "--out", tmp_path / "run", "--dataset", dataset, "--no-verify"]
    args += ["--data-dir", data_for(spec, data_dir, cifar_dir)] + (["--valid-size", "10"] if spec == "m2" else [])
    run_cli(cli, args)
    imported = pixelrnn.load(tmp_path / "run")
    images = images_for(imported, seed=2)
    with torch.no_grad():
        np.testing.assert_allclose(made.nll(images).double().numpy(), imported.nll(images), rtol=1e-5)


def influence(model, height: int, width: int) -> np.ndarray:
    """``changed[p, q]``: whether changing sub-pixel p changes sub-pixel q's logits, sub-pixels
    in raster order (row, column, then R -> G -> B), for one random image, in float64."""
    model = model.double()
    channels, levels = model.channels, model.levels
    base = torch.randint(0, levels, (1, channels, height, width), generator=torch.Generator().manual_seed(0))
    n = channels * height * width
    batch = base.repeat(n + 1, 1, 1, 1)
    for k in range(n):
        r, c, ch = k // (width * channels), (k // channels) % width, k % channels
        batch[k + 1, ch, r, c] = (batch[k + 1, ch, r, c] + 1) % levels
    with torch.no_grad():
        logits = model(batch)
    per = logits.view(n + 1, channels, -1, height, width)
    changed = (per[1:] != per[:1]).any(2)  # [n, C, H, W]
    return changed.permute(0, 2, 3, 1).reshape(n, n).numpy()


@pytest.mark.parametrize("spec", ["m1", "m2", "m3", "m4"])
def test_fresh_models_are_causal(spec):
    torch.manual_seed(1)
    height, width = 7, 6
    pixel_cnn = spec in ("m1", "m2")
    changed = influence(twin.build(spec, 3 if pixel_cnn else 8, 2 if pixel_cnn else None), height, width)
    n = changed.shape[0]
    later = np.triu(np.ones((n, n), dtype=bool), k=1)
    assert not changed[~later].any(), "a sub-pixel's logits read itself or a later sub-pixel"
    assert changed[later].any()
    if spec == "m4":
        # No blind spot (§3.2): every pixel reaches the rest of its row and every row from two
        # below on (the row just below only partly: the 7x7 mask A layer reads 3 columns on
        # each side, and the shifted right-to-left scan reaches row r + 1 from row r's inputs).
        for p in range(n):
            r, c = divmod(p, width)
            reached = [q for q in range(p + 1, n) if q // width == r or q // width >= r + 2]
            assert changed[p, reached].all(), f"pixel ({r}, {c}) does not reach all it should"


def test_the_module_imports_on_its_own():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('standalone_twin', {str(TWIN_PATH)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert not any(name.startswith('pixelrnn') for name in sys.modules), sorted(sys.modules)\n"
        "print(type(module.build('m4', 2)).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "DiagBiLSTM"


def test_tensors_that_do_not_fit_are_refused(runs):
    tensors, metadata = twin.read_safetensors(runs["m4"].export("pytorch"))
    config = json.loads(metadata["pixelrnn.model"])
    assert type(twin.from_state_dict(tensors)) is twin.DiagBiLSTM
    with pytest.raises(ValueError, match="missing proj.bias"):
        twin.from_state_dict({k: v for k, v in tensors.items() if k != "proj.bias"})
    with pytest.raises(ValueError, match="unexpected extra"):
        twin.from_state_dict(dict(tensors, extra=np.zeros(1, np.float32)))
    with pytest.raises(ValueError, match="not the PyTorch twin's"):
        twin.from_state_dict({"weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(ValueError, match="diagonal_padding"):
        twin.from_state_dict(tensors, dict(config, diagonal_padding="zero"))
    with pytest.raises(ValueError, match="skip"):
        twin.from_state_dict(tensors, dict(config, skip=True))
    m1, _ = twin.read_safetensors(runs["m1"].export("pytorch"))
    flipped = dict(m1)
    flipped["inp.mask"] = 1.0 - m1["inp.mask"]
    with pytest.raises(ValueError, match="inp.mask is not this twin's mask"):
        twin.from_state_dict(flipped)
    with pytest.raises(ValueError, match="m1, m2, m3, m4"):
        twin.build("m5", 4)
    with pytest.raises(ValueError, match="not a safetensors file"):
        twin.from_safetensors(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}     ")


FIXTURES = Path(__file__).resolve().parents[2] / "crates" / "pixelrnn" / "tests" / "library" / "fixtures"


@pytest.mark.parametrize("spec", ["m1", "m2", "m3", "m4"])
def test_twin_reproduces_the_golden_fixtures(spec):
    """The committed golden fixtures (crates/pixelrnn/tests/library/fixtures) were made by an
    independent PyTorch implementation of the specs; pixelrnn's own golden tests import them.
    The twin loads each state_dict strictly and gives the same per-image NLL."""
    expected = json.loads((FIXTURES / f"{spec}.json").read_text())
    model = twin.from_safetensors((FIXTURES / f"{spec}.safetensors").read_bytes()).eval()
    images = np.array(expected["images"], dtype=np.uint8).reshape(expected["shape"])
    with torch.no_grad():
        ours = model.nll(images).double().numpy()
    np.testing.assert_allclose(ours, expected["nll_nats"], rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# The successors' parts in pixelrnn's native layout (twin.NativeModel)
# ----------------------------------------------------------------------------------------------

# Small runs of each new part on the small CIFAR-10: Gated PixelCNN (softmax, no skip), PixelCNN
# with a logistic mixture, and a conditional Gated PixelCNN with a mixture and skip connections.
NATIVE_RUNS = {
    "gated": dict(model="gated-pixel-cnn", layers=2, hidden=3, output_hidden=6, no_skip=True),
    "mixture": dict(model="pixel-cnn", layers=1, hidden=3, output_hidden=6, output="mixture", components=4, no_skip=True),
    "conditional": dict(
        model="gated-pixel-cnn", layers=2, hidden=3, output_hidden=6, output="mixture", components=3, conditional=True
    ),
}


@pytest.fixture(scope="module")
def native_runs(tmp_path_factory, cifar_dir) -> dict:
    """Each trained for 3 steps (the class embedding, which starts at zero, moves too)."""
    out = {}
    for name, options in NATIVE_RUNS.items():
        path = tmp_path_factory.mktemp("native") / name
        extra = dict(options, dataset="cifar10", valid_size=10, steps=3, batch_size=4, lr=0.01)
        pixelrnn.train(path, progress=False, **tiny_options(cifar_dir, **extra))
        out[name] = pixelrnn.load(path)
    return out


def labels_for(model, count: int, seed: int = 0) -> np.ndarray | None:
    return None if model.classes is None else np.random.default_rng(seed).integers(0, model.classes, count)


@pytest.mark.parametrize("name", list(NATIVE_RUNS))
def test_the_native_twin_computes_the_models_nll(native_runs, name):
    model = native_runs[name]
    torched = model.to_torch()
    assert isinstance(torched, twin.NativeModel) and torched.config == model.config["model"]
    images = images_for(model)
    labels = labels_for(model, len(images))
    expected = model.nll(images, labels)
    with torch.no_grad():
        got = torched.nll(images, labels).double().numpy()
        targets = torch.from_numpy(images).long()
        per_subpixel = torched.nll_per_subpixel(torched(images, labels), targets).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(per_subpixel, model.score(images, labels, per_channel=True), atol=2e-5)
    if labels is not None:  # the labels matter: another class gives another NLL
        with torch.no_grad():
            other = torched.nll(images, (labels + 1) % model.classes).double().numpy()
        assert np.abs(other - got).max() > 1e-3
        np.testing.assert_allclose(other, model.nll(images, (labels + 1) % model.classes), rtol=1e-5)


def test_native_state_dicts_hold_pixelrnns_names_and_no_masks(native_runs):
    for name, model in native_runs.items():
        tensors, metadata = twin.read_safetensors(model.export("pixelrnn"))
        fresh = twin.NativeModel(json.loads(metadata["pixelrnn.model"]))
        assert metadata["pixelrnn.layout"] == "native"
        assert {k: tuple(v.shape) for k, v in fresh.state_dict().items()} == {k: v.shape for k, v in tensors.items()}, name
        assert not any(k.endswith("mask") for k in fresh.state_dict()), name
        # The twin's own bytes give back the same tensors.
        written = twin.native_to_safetensors(twin.native_from_safetensors(model.export("pixelrnn")))
        again, again_metadata = twin.read_safetensors(written)
        assert json.loads(again_metadata["pixelrnn.model"]) == model.config["model"]
        for k, v in tensors.items():
            np.testing.assert_array_equal(again[k], v, err_msg=k)


@pytest.mark.parametrize("name", list(NATIVE_RUNS))
def test_a_native_model_made_in_pytorch_imports_into_pixelrnn(cli, cifar_dir, tmp_path, name):
    options = NATIVE_RUNS[name]
    torch.manual_seed(7)
    made = twin.NativeModel(
        twin.native_config(
            options["model"],
            num_layers=options["layers"],
            hidden_channels=options["hidden"],
            components=options.get("components"),
            classes=10 if options.get("conditional") else None,
            skip=not options.get("no_skip", False),
        )
    )
    with torch.no_grad():  # away from PyTorch's initialisation (and a zero class embedding)
        for p in made.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "weights.safetensors"
    path.write_bytes(twin.native_to_safetensors(made))
    args = ["import", path, "--out", tmp_path / "run", "--dataset", "cifar10", "--no-verify"]
    args += ["--data-dir", cifar_dir, "--valid-size", "10"]
    run_cli(cli, args)
    imported = pixelrnn.load(tmp_path / "run")
    assert imported.config["model"] == made.config
    images = images_for(imported, seed=2)
    labels = labels_for(imported, len(images), seed=3)
    with torch.no_grad():
        np.testing.assert_allclose(made.nll(images, labels).double().numpy(), imported.nll(images, labels), rtol=1e-5)


class _WithLabels(torch.nn.Module):
    """A conditional model as a function of the images alone (fixed labels), for influence()."""

    def __init__(self, model, labels):
        super().__init__()
        self.model, self.labels = model, labels
        self.channels, self.levels = model.channels, model.levels

    def forward(self, images):
        return self.model(images, self.labels.expand(len(images)))


@pytest.mark.parametrize("name", list(NATIVE_RUNS))
def test_fresh_native_models_are_causal_and_gated_ones_have_no_blind_spot(name):
    options = NATIVE_RUNS[name]
    torch.manual_seed(1)
    conditional = bool(options.get("conditional"))
    model = twin.NativeModel(
        twin.native_config(
            options["model"],
            image=(3, 7, 9, 256),
            num_layers=2,
            hidden_channels=3,
            components=options.get("components"),
            classes=4 if conditional else None,
            skip=conditional,
        )
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    height, width = 7, 9
    function = _WithLabels(model, torch.tensor([2])) if conditional else model
    changed = influence(function, height, width)
    n = changed.shape[0]
    later = np.triu(np.ones((n, n), dtype=bool), k=1)
    assert not changed[~later].any(), "a sub-pixel's parameters read itself or a later sub-pixel"
    assert changed[later].any()
    # The likelihood too (§2.2 for the mixture: channel c's means read channels < c of the same
    # pixel): no sub-pixel's NLL changes with a later sub-pixel.
    base = torch.randint(0, 256, (1, 3, height, width), generator=torch.Generator().manual_seed(0))
    batch = base.repeat(n + 1, 1, 1, 1)
    for k in range(n):
        r, c, ch = k // (width * 3), (k // 3) % width, k % 3
        batch[k + 1, ch, r, c] = (batch[k + 1, ch, r, c] + 1) % 256
    with torch.no_grad():
        per = model.nll_per_subpixel(function(batch), batch)  # [n + 1, 3, H, W]
    moved = (per[1:] != per[:1]).permute(0, 2, 3, 1).reshape(n, n).numpy()
    assert not moved[later.T & ~np.eye(n, dtype=bool)].any(), "a sub-pixel's NLL reads a later sub-pixel"
    assert moved[np.eye(n, dtype=bool)].all() and moved[later].any()
    # The blind spot (Gated PixelCNN §2.2): a PixelCNN's pixel (r, c) never reads (r - 1, c + 4) (its mask A 7x7
    # reaches c + 3 on the row above, and what its 3x3s read there reaches only further left);
    # the Gated PixelCNN's vertical stack does, at every layer's pre-activations.
    pairs = [(((r - 1) * width + c + 4) * 3, (r * width + c) * 3) for r in range(1, height) for c in range(width - 4)]
    reached = [changed[p : p + 3, q : q + 3].any() for p, q in pairs]
    if options["model"] == "pixel-cnn":
        assert not any(reached)
    else:
        assert any(reached)  # through the output stack's ReLUs: not necessarily every pair
        x = torch.zeros(1, 3, height, width, dtype=torch.float64)
        with torch.no_grad():
            base_links = model.vertical(x)
            for r in range(1, height):
                for c in range(width - 4):
                    moved_x = x.clone()
                    moved_x[0, 0, r - 1, c + 4] = 0.5
                    for layer, (a, b) in enumerate(zip(base_links, model.vertical(moved_x))):
                        message = f"layer {layer}: ({r}, {c}) does not read ({r - 1}, {c + 4})"
                        assert (a[0, :, r, c] != b[0, :, r, c]).any(), message


def test_native_models_check_their_labels_and_tensors():
    config = twin.native_config("gated-pixel-cnn", num_layers=1, hidden_channels=3, components=2, classes=5)
    model = twin.NativeModel(config)
    images = np.zeros((2, 3, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="needs each image's class label"):
        model.nll(images)
    with pytest.raises(ValueError, match="class labels must be in 0..4"):
        model.nll(images, np.array([0, 5]))
    with pytest.raises(ValueError, match="takes no class label"):
        twin.NativeModel(dict(config, classes=None)).nll(images, np.array([0, 1]))
    tensors = model.state_dict()
    assert tensors["conditioning.table"].shape == (2, 5, 6)
    with pytest.raises(ValueError, match="missing vertical.convs.0.bias"):
        twin.native_from_state_dict({k: v for k, v in tensors.items() if k != "vertical.convs.0.bias"}, config)
    with pytest.raises(ValueError, match="has shape"):
        twin.native_from_state_dict(tensors, dict(config, output={"mixture": {"components": 3}}))
    with pytest.raises(ValueError, match="row-lstm"):
        twin.NativeModel(dict(config, architecture="row-lstm"))
    with pytest.raises(ValueError, match="mixture"):
        twin.NativeModel(dict(config, image=dict(config["image"], channels=1, levels=2)))
    with pytest.raises(ValueError, match="pytorch layout"):
        twin.native_from_safetensors(twin.to_safetensors(twin.build("m1", 2, 1)))


@pytest.mark.parametrize("spec", ["m5", "m6", "m5c"])
def test_the_native_twin_reproduces_the_golden_fixtures(spec):
    """The successors' golden fixtures (made by this twin, make_fixtures.py --only-new): the
    twin reads them back strictly and gives the recorded per-image NLL; pixelrnn's golden tests
    import the same files."""
    expected = json.loads((FIXTURES / f"{spec}.json").read_text())
    model = twin.native_from_safetensors((FIXTURES / f"{spec}.safetensors").read_bytes()).eval()
    assert model.config == expected["model"]
    images = np.array(expected["images"], dtype=np.uint8).reshape(expected["shape"])
    labels = np.array(expected["labels"]) if "labels" in expected else None
    with torch.no_grad():
        ours = model.nll(images, labels).double().numpy()
    np.testing.assert_allclose(ours, expected["nll_nats"], rtol=1e-6)
