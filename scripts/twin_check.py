"""The PyTorch side of scripts/twin-check.sh: loads weights written by `pixelrnn export`
(`--layout pytorch` for M1-M4, `--layout native` for the successors' models M5, M6 and the
conditional m5c) into the repository's twin (python/pixelrnn/twin.py) strictly, masks included
where the layout has them, and prints the NLL of each image (raw uint8 values, N x C x H x W) as
JSON. A conditional model's labels are not among what `eval --save-images` writes: they are read
from the run's dataset files (`--labels-from RUN --split SPLIT`), the split's images in eval's
order, which must be byte for byte the saved images.

    python scripts/twin_check.py --spec m1 --weights run.safetensors --images run.images
    python scripts/twin_check.py --spec m5c --weights run.safetensors --images run.images --labels-from run --split valid
"""
import argparse
import gzip
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

parser = argparse.ArgumentParser()
parser.add_argument("--spec", required=True, choices=["m1", "m2", "m3", "m4", "m5", "m6", "m5c"])
parser.add_argument("--weights", required=True)
parser.add_argument("--images", required=True)
parser.add_argument("--labels-from", metavar="RUN", help="a conditional model's run directory: its dataset gives the labels")
parser.add_argument("--split", default="test", choices=["train", "valid", "test"], help="eval's split (with --labels-from)")
args = parser.parse_args()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "bench"))
from twin_load import twin  # noqa: E402


def read_idx(path: Path) -> np.ndarray:
    """An IDX file's array (MNIST's format), gzipped or not."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def dataset_split(run: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The images ``[N, C, H, W]`` and labels of a split of the run's dataset, as pixelrnn
    makes it (``data/registry.rs``): validation = the last ``valid_size`` training images
    (CIFAR-10 5,000 by default, MNIST and Fashion-MNIST 10,000)."""
    data = json.loads((run / "config.json").read_text())["data"]
    name, folder = data["dataset"], data.get("data_dir")
    if folder is None:
        raise SystemExit(f"{run}: the run records no data folder to read the labels from")
    folder = Path(folder)
    if name == "cifar10":
        if not (folder / "data_batch_1.bin").is_file() and (folder / "cifar-10-batches-bin").is_dir():
            folder = folder / "cifar-10-batches-bin"
        records = lambda files: np.concatenate([np.fromfile(folder / f, dtype=np.uint8).reshape(-1, 3073) for f in files])
        train = records([f"data_batch_{k}.bin" for k in range(1, 6)])
        test = records(["test_batch.bin"]) if split == "test" else train[:0]
        as_pair = lambda r: (r[:, 1:].reshape(-1, 3, 32, 32), r[:, 0])
        (train_x, train_y), (test_x, test_y), valid = as_pair(train), as_pair(test), 5000
    elif name in ("mnist", "fashion-mnist"):
        find = lambda stem: next(p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file())
        train_x, train_y = read_idx(find("train-images-idx3-ubyte"))[:, None], read_idx(find("train-labels-idx1-ubyte"))
        test_x, test_y = read_idx(find("t10k-images-idx3-ubyte"))[:, None], read_idx(find("t10k-labels-idx1-ubyte"))
        valid = 10000
    else:
        raise SystemExit(f"labels of {name} are not read here (cifar10, mnist, fashion-mnist)")
    valid = data.get("valid_size") if data.get("valid_size") is not None else valid
    held = len(train_x) - valid
    return {
        "train": (train_x[:held], train_y[:held]),
        "valid": (train_x[held:], train_y[held:]),
        "test": (test_x, test_y),
    }[split]


torch.set_num_threads(2)
data = Path(args.weights).read_bytes()
_, metadata = twin.read_safetensors(data)
if metadata.get("pixelrnn.layout") == "native":
    model = twin.native_from_safetensors(data).eval()
    image = model.config["image"]
    c, s = image["channels"], image["height"]
else:
    model = twin.from_safetensors(data).eval()
    c, s = (3, 32) if args.spec == "m2" else (1, 28)
images = torch.from_numpy(np.fromfile(args.images, dtype=np.uint8).reshape(-1, c, s, s))
labels = None
if args.labels_from is not None:
    split_images, split_labels = dataset_split(Path(args.labels_from), args.split)
    if not np.array_equal(split_images[: len(images)], images.numpy()):
        raise SystemExit("the saved images are not the split's first images in the dataset's order: the labels would not be theirs")
    labels = torch.from_numpy(split_labels[: len(images)].astype(np.int64))
nll, other = [], []
with torch.no_grad():
    for start in range(0, len(images), 64):
        chunk = images[start : start + 64]
        given = None if labels is None else labels[start : start + 64]
        nll += model.nll(chunk, given).tolist() if given is not None else model.nll(chunk).tolist()
        if given is not None:  # the next class: shows that the labels change the NLL at all
            other += model.nll(chunk, (given + 1) % model.classes).tolist()
result = {"spec": args.spec, "images": len(nll), "per_image_nats": nll}
if labels is not None:
    result["per_image_nats_next_class"] = other
print(json.dumps(result))
