"""The peer side of scripts/vs-pixelcnnpp.sh: PixelCNN++'s PyTorch implementation
(github.com/pclucas14/pixel-cnn-pp; its model.py, layers.py and utils.py, used unchanged except
for the two things it needs on a CPU) trained on pixelrnn's CIFAR-10 training split for a fixed
wall-clock time, then scored on the held-out images pixelrnn scores (the same bytes).

What is changed in the peer, in a copy (the checkout given is not touched):
- utils.py's discretized_mix_logistic_loss builds a zero tensor with a hard-coded `.cuda()`: the
  copy builds it on the input's device;
- utils.py has one Python 2 `print e` (in a function not used here): the copy has `print(e)`;
- model.py caches its input padding for the first batch size it sees: the driver resets the
  cache (`model.init_padding = None`) whenever the batch size changes.
Nothing else: the peer's own model, loss (which, as in the original, approximates a sub-pixel's
probability by the density at the bin's centre when it is below 1e-5) and initialisation. What
is not the peer's: this loop (its main.py needs torchvision's CIFAR-10 download and a GPU); the
peer's per-epoch learning-rate decay (0.999995 per epoch) is left out: it changes nothing in
600 seconds.

    python scripts/peer_pixelcnnpp.py --peer PEER_CHECKOUT --cifar CIFAR_DIR --heldout FILE \
        [--seconds 600] [--threads 2] [--nr-resnet 1] [--nr-filters 32] [--nr-mix 5] \
        [--batch 16] [--lr 2e-4] [--seed 1] [--valid-size 5000]

CIFAR_DIR holds cifar-10-batches-bin's data_batch_{1..5}.bin; FILE is raw uint8 N x 3 x 32 x 32
(what `pixelrnn eval --save-images` writes). Prints one JSON object on stdout.
"""
import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time

import numpy as np
import torch

parser = argparse.ArgumentParser()
parser.add_argument("--peer", required=True, help="a checkout of pclucas14/pixel-cnn-pp")
parser.add_argument("--cifar", required=True)
parser.add_argument("--heldout", required=True)
parser.add_argument("--seconds", type=float, default=600)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--nr-resnet", type=int, default=1)
parser.add_argument("--nr-filters", type=int, default=32)
parser.add_argument("--nr-mix", type=int, default=5)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--lr", type=float, default=2e-4)
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--valid-size", type=int, default=5000, help="pixelrnn's held-out count (the last images)")
args = parser.parse_args()


def peer_modules(checkout: str):
    """The peer's model and loss, imported from a patched copy of its sources."""
    for name in ["model.py", "layers.py", "utils.py"]:
        if not os.path.isfile(os.path.join(checkout, name)):
            sys.exit(f"--peer {checkout}: no {name} (expected a checkout of github.com/pclucas14/pixel-cnn-pp)")
    copy = tempfile.mkdtemp(prefix="pixel-cnn-pp-")
    for name in ["model.py", "layers.py", "utils.py"]:
        shutil.copy(os.path.join(checkout, name), copy)
    path = os.path.join(copy, "utils.py")
    text = open(path).read()
    patched, count = re.subn(r"torch\.zeros\(xs \+ \[nr_mix\]\)\.cuda\(\)", "torch.zeros(xs + [nr_mix], device=x.device)", text)
    if count != 2:
        sys.exit(f"--peer {checkout}: utils.py is not the version this driver knows (expected 2 hard-coded .cuda() zero tensors in the losses, found {count})")
    # One Python 2 statement (in load_part_of_model, which is not used here) keeps Python 3
    # from importing the file.
    patched = re.sub(r"^(\s*)print e$", r"\1print(e)", patched, flags=re.M)
    open(path, "w").write(patched)
    sys.path.insert(0, copy)
    import model as peer_model  # noqa: E402
    import utils as peer_utils  # noqa: E402

    return peer_model, peer_utils


def cifar_train(folder: str) -> np.ndarray:
    """The five training files in order, N x 3 x 32 x 32 uint8."""
    parts = []
    for k in range(1, 6):
        path = os.path.join(folder, f"data_batch_{k}.bin")
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size != 10000 * 3073:
            sys.exit(f"{path}: {raw.size} bytes, expected 10000 records of 3073")
        parts.append(raw.reshape(10000, 3073)[:, 1:].reshape(10000, 3, 32, 32))
    return np.concatenate(parts)


def scaled(batch: np.ndarray) -> torch.Tensor:
    """uint8 -> [-1, 1], as the peer's `(ToTensor() - .5) * 2`."""
    return torch.from_numpy(batch.astype(np.float32) / 127.5 - 1.0)


torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
rng = np.random.RandomState(args.seed)
peer_model, peer_utils = peer_modules(args.peer)
images = cifar_train(args.cifar)
train = images[: len(images) - args.valid_size]
heldout = np.fromfile(args.heldout, dtype=np.uint8).reshape(-1, 3, 32, 32)
if not 0 < args.valid_size < len(images) or not np.array_equal(heldout[0], images[len(images) - args.valid_size]):
    sys.exit(f"{args.heldout}: its first image is not the first held-out training image (--valid-size {args.valid_size})")

model = peer_model.PixelCNN(nr_resnet=args.nr_resnet, nr_filters=args.nr_filters, nr_logistic_mix=args.nr_mix, input_channels=3)
parameters = sum(p.numel() for p in model.parameters())
optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
loss_op = peer_utils.discretized_mix_logistic_loss
dims = 3 * 32 * 32


def forward(x: torch.Tensor) -> torch.Tensor:
    if model.init_padding is not None and model.init_padding.shape[0] != x.shape[0]:
        model.init_padding = None
    return model(x)


steps, seen, losses = 0, 0, []
model.train()
start = time.perf_counter()
while time.perf_counter() - start < args.seconds:
    order = rng.permutation(len(train))
    for first in range(0, len(order) - args.batch + 1, args.batch):
        x = scaled(train[order[first : first + args.batch]])
        loss = loss_op(x, forward(x))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
        seen += args.batch
        losses.append(loss.item() / (args.batch * dims * math.log(2)))
        if time.perf_counter() - start >= args.seconds:
            break
trained = time.perf_counter() - start

model.eval()
per_image = []
with torch.no_grad():
    for first in range(0, len(heldout), 50):
        x = scaled(heldout[first : first + 50])
        out = forward(x)
        per_image += [loss_op(x[i : i + 1], out[i : i + 1]).item() / (dims * math.log(2)) for i in range(len(x))]
bpd = float(np.mean(per_image))
stderr = float(np.std(per_image, ddof=1) / math.sqrt(len(per_image))) if len(per_image) > 1 else 0.0
print(
    json.dumps(
        {
            "model": "pclucas14/pixel-cnn-pp",
            "nr_resnet": args.nr_resnet,
            "nr_filters": args.nr_filters,
            "nr_logistic_mix": args.nr_mix,
            "parameters": parameters,
            "batch_size": args.batch,
            "lr": args.lr,
            "threads": args.threads,
            "steps": steps,
            "images_seen": seen,
            "train_seconds": trained,
            "last_100_steps_bits_per_dim": float(np.mean(losses[-100:])) if losses else None,
            "images": len(per_image),
            "bits_per_dim": bpd,
            "stderr_bits_per_dim": stderr,
            "torch": torch.__version__,
        }
    )
)
