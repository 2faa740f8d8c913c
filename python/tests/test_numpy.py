"""NumPy in and out: shapes, dtypes, round trips, and every kind of bad input refused with a
Python exception (never a crash)."""

import shutil

import numpy as np
import pytest

import pixelrnn


def test_model_describes_itself(model, run_dir):
    assert model.shape == (1, 28, 28) and model.levels == 2 and model.classes is None
    assert model.architecture == "pixel-cnn" and model.dataset_name == "binarized-mnist"
    assert model.averaged and model.step == 4 and model.unit == "nats"
    assert model.config["model"]["architecture"] == "pixel-cnn"
    assert "pixel-cnn" in repr(model)
    raw = pixelrnn.load(run_dir, raw_weights=True)
    assert not raw.averaged


def test_sample_shapes_and_values(model):
    images = model.sample(3, seed=5)
    assert images.shape == (3, 1, 28, 28) and images.dtype == np.uint8
    assert images.max() <= 1
    assert images.flags.writeable


def test_sampling_is_reproducible_by_seed(model):
    a = model.sample(4, seed=11)
    assert np.array_equal(a, model.sample(4, seed=11))
    assert not np.array_equal(a, model.sample(4, seed=12))


def test_fast_and_naive_samplers_agree(model):
    assert np.array_equal(model.sample(2, seed=7), model.sample(2, seed=7, naive=True))


def test_nll_units_and_layouts(model):
    images = model.sample(5, seed=1)
    nats = model.nll(images)
    assert nats.shape == (5,) and nats.dtype == np.float64 and (nats > 0).all()
    np.testing.assert_allclose(model.nll(images, unit="bits"), nats / np.log(2))
    np.testing.assert_allclose(model.nll(images, unit="bits/dim"), nats / np.log(2) / 784)
    # (N, H, W) for grey images, and one image alone, give the same numbers.
    assert np.array_equal(model.nll(images[:, 0]), nats)
    assert model.nll(images[2, 0])[0] == model.nll(images[2:3])[0]
    with pytest.raises(ValueError, match="unit"):
        model.nll(images, unit="furlongs")


def test_score_sums_to_the_nll(model):
    images = model.sample(3, seed=2)
    maps = model.score(images)
    assert maps.shape == (3, 28, 28)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), model.nll(images), rtol=1e-5)
    assert model.score(images, per_channel=True).shape == (3, 1, 28, 28)


def test_completion_keeps_the_observed_rows(model):
    images = model.sample(2, seed=3)
    done = model.complete(images, rows=10, samples=3, seed=4)
    assert done.shape == (2, 3, 1, 28, 28)
    assert (done[:, :, :, :10] == images[:, None, :, :10]).all()
    assert np.array_equal(done, model.complete(images, rows=10, samples=3, seed=4))


def test_compress_round_trip(model):
    images = model.sample(6, seed=8)
    data = pixelrnn.compress(model, images)
    assert isinstance(data, bytes)
    assert np.array_equal(pixelrnn.decompress(model, data), images)
    named = pixelrnn.compress(model, images, names=[f"digit-{i}.png" for i in range(6)])
    back = pixelrnn.decompress(model, named, with_names=True)
    assert back.names == [f"digit-{i}.png" for i in range(6)] and back.labels is None
    assert np.array_equal(back.images, images)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (np.zeros((2, 1, 28, 28), dtype=np.int64), TypeError, "dtype uint8"),
        (np.zeros((2, 1, 28, 28), dtype=np.float32), TypeError, "dtype uint8"),
        ([[0, 1]], TypeError, "numpy.ndarray"),
        (np.zeros((2, 3, 28, 28), dtype=np.uint8), ValueError, r"shape \(N, 1, 28, 28\)"),
        (np.zeros((2, 1, 28, 27), dtype=np.uint8), ValueError, "shape"),
        (np.zeros((0, 1, 28, 28), dtype=np.uint8), ValueError, "empty"),
        (np.full((1, 1, 28, 28), 2, dtype=np.uint8), ValueError, "above the model's levels 0..1"),
    ],
)
def test_bad_images_are_refused(model, bad, error, message):
    for call in (model.nll, model.score, lambda x: model.complete(x, rows=3), lambda x: pixelrnn.compress(model, x)):
        with pytest.raises(error, match=message):
            call(bad)


def test_bad_arguments_are_refused(model):
    images = model.sample(1, seed=1)
    with pytest.raises(ValueError, match="rows"):
        model.complete(images, rows=28)
    with pytest.raises(ValueError, match="samples"):
        model.complete(images, rows=3, samples=0)
    with pytest.raises(ValueError, match="n must be"):
        model.sample(0)
    with pytest.raises(ValueError, match="seed"):
        model.sample(1, seed=-1)
    with pytest.raises(ValueError, match="not class-conditional"):
        model.nll(images, labels=[3])
    with pytest.raises(pixelrnn.PixelRnnError, match="names for"):
        pixelrnn.compress(model, images, names=["a.png", "b.png"])
    with pytest.raises(pixelrnn.PixelRnnError, match="split"):
        model.dataset("holdout")
    with pytest.raises(ValueError, match="limit"):
        model.dataset("test", limit=0)
    with pytest.raises(pixelrnn.PixelRnnError, match="batch_size"):
        model.nll(images, batch_size=0)


def test_damaged_files_are_refused(model):
    data = pixelrnn.compress(model, model.sample(2, seed=9))
    for damaged in (data[:-5], data[:10], b"", data[:40] + bytes([data[40] ^ 0xFF]) + data[41:]):
        with pytest.raises(pixelrnn.PixelRnnError):
            pixelrnn.decompress(model, damaged)
    with pytest.raises(TypeError, match="bytes"):
        pixelrnn.decompress(model, "not bytes")


def test_damaged_run_directories_are_refused(run_dir, tmp_path):
    with pytest.raises(pixelrnn.PixelRnnError, match="no such run directory"):
        pixelrnn.load(tmp_path / "missing")
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "config.json").write_text("{ not json")
    with pytest.raises(pixelrnn.PixelRnnError, match="config.json"):
        pixelrnn.load(broken)
    shutil.rmtree(broken)
    shutil.copytree(run_dir, broken)
    checkpoint = broken / "checkpoint-last.bin"
    blob = bytearray(checkpoint.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    checkpoint.write_bytes(bytes(blob))
    with pytest.raises(pixelrnn.PixelRnnError, match="checkpoint-last.bin"):
        pixelrnn.load(broken, checkpoint="last")
    with pytest.raises(pixelrnn.PixelRnnError, match="checkpoint"):
        pixelrnn.load(run_dir, checkpoint="newest")
    with pytest.raises(pixelrnn.PixelRnnError, match="device"):
        pixelrnn.load(run_dir, device="tpu")


def test_conditional_models_take_labels(conditional_run):
    model = pixelrnn.load(conditional_run)
    assert model.classes == 10
    images = model.sample(10, seed=1)  # the classes in turn, as the CLI
    assert np.array_equal(images, model.sample(10, seed=1, labels=np.arange(10)))
    with pytest.raises(ValueError, match="give labels"):
        model.nll(images)
    same = model.nll(images, labels=3)
    assert np.array_equal(same, model.nll(images, labels=[3] * 10))
    assert not np.array_equal(model.nll(images, labels=np.arange(10)), same)
    with pytest.raises(ValueError, match="0..9"):
        model.nll(images, labels=10)
    data = pixelrnn.compress(model, images, labels=np.arange(10))
    back = pixelrnn.decompress(model, data, with_names=True)
    assert np.array_equal(back.images, images) and list(back.labels) == list(range(10))


def test_to_torch_without_torch_says_what_to_install(model):
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install torch"):
            model.to_torch()
    else:
        pytest.skip("torch is installed: test_twin.py covers to_torch")
