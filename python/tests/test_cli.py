"""The Python module and the `pixelrnn` command give the same numbers, images and files."""

import numpy as np

import pixelrnn
from conftest import run_cli, test_images


def test_nll_equals_eval_exactly(cli, run_dir, model, tmp_path):
    images = test_images(cli, run_dir, tmp_path, limit=10)
    import json

    report = json.loads(run_cli(cli, ["eval", "--run", run_dir, "--limit", 10, "--json", "--per-image"]).stdout)
    assert model.nll(images).tolist() == report["per_image_nats"]
    # The summary too.
    assert float(np.mean(model.nll(images))) == report["nll_nats"]


def test_dataset_gives_the_images_eval_scores(cli, run_dir, model, tmp_path):
    images, labels = model.dataset("test", limit=10)
    assert np.array_equal(images, test_images(cli, run_dir, tmp_path, limit=10))
    assert labels.tolist() == [i % 10 for i in range(10)]
    assert model.dataset("train", limit=3)[0].shape == (3, 1, 28, 28)


def test_samples_equal_the_clis(cli, run_dir, model, tmp_path):
    each = tmp_path / "each"
    run_cli(cli, ["sample", "--run", run_dir, "--count", 5, "--seed", 21, "--out", tmp_path / "grid.png", "--each", each])
    # The CLI's PNGs, read back losslessly through its own codec.
    run_cli(cli, ["compress", "--run", run_dir, each, "-o", tmp_path / "cli.prnn"])
    theirs = pixelrnn.decompress(model, (tmp_path / "cli.prnn").read_bytes(), with_names=True)
    assert theirs.names == [f"sample-{i:04}.png" for i in range(5)]
    assert np.array_equal(model.sample(5, seed=21), theirs.images)


def test_compressed_files_cross_both_ways(cli, run_dir, model, tmp_path):
    images = test_images(cli, run_dir, tmp_path, limit=8)
    # The CLI compresses the split; Python writes the same bytes for the same images.
    run_cli(cli, ["compress", "--run", run_dir, "--split", "test", "--limit", 8, "-o", tmp_path / "cli.prnn"])
    cli_bytes = (tmp_path / "cli.prnn").read_bytes()
    assert pixelrnn.compress(model, images) == cli_bytes
    assert np.array_equal(pixelrnn.decompress(model, cli_bytes), images)
    # Python's file decompresses with the CLI into the same images (compressed again: the same file).
    (tmp_path / "py.prnn").write_bytes(pixelrnn.compress(model, images))
    run_cli(cli, ["decompress", tmp_path / "py.prnn", "--run", run_dir, "-o", tmp_path / "out"])
    pngs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert pngs == [f"{i:05}.png" for i in range(8)]
    run_cli(cli, ["compress", "--run", run_dir, tmp_path / "out", "-o", tmp_path / "again.prnn"])
    again = pixelrnn.decompress(model, (tmp_path / "again.prnn").read_bytes())
    assert np.array_equal(again, images)


def test_training_writes_the_clis_run(cli, run_dir):
    # The run trained from Python is one the CLI reads and continues.
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "checkpoint-last.bin", "metrics.jsonl"} <= names
    run_cli(cli, ["eval", "--run", run_dir, "--limit", 4])
