"""A tour of the Python module: load a trained model, score a batch of test images, plot the
per-pixel NLL heatmap, complete the images' bottom halves, and compress a folder of PNGs with the
model against PNG itself.

    pip install ./python matplotlib pillow          # from the repository's root
    python python/examples/tour.py --run pretrained/binarized-mnist-diagonal-bilstm --out tour.png

MNIST is fetched on first use (or give --data-dir with its four .gz files). Writes the figure
to --out and prints the numbers.
"""

import argparse
import io
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import pixelrnn  # noqa: E402


def png_bytes(image: np.ndarray, levels: int) -> bytes:
    """One (C, H, W) image as a PNG (binary images as 0/255 grey, as the CLI writes them)."""
    scale = 255 // (levels - 1)
    pixels = (image * scale).astype(np.uint8)
    mode_image = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
    out = io.BytesIO()
    mode_image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="pretrained/binarized-mnist-diagonal-bilstm")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--out", default="tour.png")
    args = parser.parse_args()

    model = pixelrnn.load(args.run)
    print(model)
    images, labels = model.dataset("test", limit=args.count, data_dir=args.data_dir)

    # Exact likelihood of a batch, and where in each image the model was surprised.
    nats = model.nll(images)
    print(f"test images 0..{args.count - 1}: NLL {nats.mean():.2f} nats on average ({model.nll(images, unit='bits/dim').mean():.4f} bits/dim)")
    maps = model.score(images)  # (N, H, W), nats per pixel, summing to `nats`

    # Complete the bottom halves, two ways each.
    rows = model.height // 2
    completions = model.complete(images, rows=rows, samples=2, seed=1)

    # Compress a folder of PNGs (written here from the test images) with the model.
    with tempfile.TemporaryDirectory() as folder:
        for i, image in enumerate(images):
            (Path(folder) / f"{i:05}.png").write_bytes(png_bytes(image, model.levels))
        files = sorted(Path(folder).glob("*.png"))
        png_total = sum(f.stat().st_size for f in files)
        loaded = np.stack([np.asarray(Image.open(f)) // (255 // (model.levels - 1)) for f in files])
        loaded = loaded[:, None] if loaded.ndim == 3 else loaded.transpose(0, 3, 1, 2)
        coded = pixelrnn.compress(model, loaded.astype(np.uint8), names=[f.name for f in files])
        assert np.array_equal(pixelrnn.decompress(model, coded), loaded)
    print(f"{len(files)} PNGs: {png_total} bytes as PNG, {len(coded)} bytes compressed with the model ({png_total / len(coded):.1f}x smaller)")

    fig, axes = plt.subplots(4, args.count, figsize=(1.4 * args.count, 6))
    for i in range(args.count):
        axes[0, i].imshow(images[i, 0], cmap="gray_r", vmin=0, vmax=model.levels - 1)
        axes[0, i].set_title(f"{labels[i]}: {nats[i]:.0f} nats", fontsize=8)
        axes[1, i].imshow(maps[i], cmap="magma")
        for k in range(2):
            axes[2 + k, i].imshow(completions[i, k, 0], cmap="gray_r", vmin=0, vmax=model.levels - 1)
            axes[2 + k, i].axhline(rows - 0.5, color="tab:red", linewidth=0.8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, name in zip(axes[:, 0], ["test image", "NLL per pixel", "completion", "completion"]):
        ax.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"figure -> {args.out}")


if __name__ == "__main__":
    main()
