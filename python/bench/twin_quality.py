"""Quality per wall-clock of the PyTorch twin (python/pixelrnn/twin.py): trains a binary
benchmark spec (m1, m3, m4) on binarized MNIST for a fixed time, then prints the test NLL in
nats (what scripts/quality-vs-pytorch.sh compares with pixelrnn).

    python python/bench/twin_quality.py --model m1 --seconds 1200 --threads 1 --npz images.npz

Data: --npz FILE with uint8 arrays `train` (N, 28, 28) and `test` (M, 28, 28) of 0/1 values
(scripts/parity_twin.py data writes it: the very images pixelrnn trains and tests on), or
--mnist-dir DIR with MNIST's four .gz files, binarized here with Bernoulli(v / 255) from numpy
generators seeded 0 (train) and 1 (test).
Training: Adam 1e-3, batches of --batch drawn uniformly with replacement (torch seed --seed);
every --eval-every seconds a JSON line with the NLL of the first 2,000 test images (counted in
the budget); at the end one JSON line with the NLL of the whole test set.
"""

import argparse
import gzip
import json
import os
import time

import numpy as np
import torch

from twin_load import twin


def mnist_images(folder, name):
    raw = gzip.open(os.path.join(folder, name), "rb").read()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)


def load(args):
    if args.npz:
        arrays = np.load(args.npz)
        train, test = arrays["train"], arrays["test"]
    else:
        train = np.random.default_rng(0).random((60000, 28, 28)) < mnist_images(args.mnist_dir, "train-images-idx3-ubyte.gz") / 255
        test = np.random.default_rng(1).random((10000, 28, 28)) < mnist_images(args.mnist_dir, "t10k-images-idx3-ubyte.gz") / 255
    as_tensor = lambda a: torch.from_numpy(np.asarray(a, dtype=np.uint8)).unsqueeze(1)  # noqa: E731
    return as_tensor(train), as_tensor(test)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["m1", "m3", "m4"], default="m1")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--steps", type=int, default=None, help="also stop after this many steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=float, default=120)
    parser.add_argument("--npz")
    parser.add_argument("--mnist-dir")
    args = parser.parse_args()
    if not (args.npz or args.mnist_dir):
        parser.error("give --npz or --mnist-dir")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, test = load(args)
    model = twin.build(args.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    def test_nll(count):
        model.eval()
        with torch.no_grad():
            total = sum(model.nll(test[i:i + 500]).sum().item() for i in range(0, count, 500))
        model.train()
        return total / count

    start, step, next_eval = time.time(), 0, args.eval_every
    while time.time() - start < args.seconds and (args.steps is None or step < args.steps):
        batch = train[torch.randint(0, len(train), (args.batch,))]
        loss = model.nll(batch).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if time.time() - start > next_eval:
            line = {"t": round(time.time() - start), "step": step, "train_nats": round(loss.item(), 3), "test_nats_2k": round(test_nll(min(2000, len(test))), 3)}
            print(json.dumps(line), flush=True)
            next_eval += args.eval_every
    print(
        json.dumps(
            {
                "framework": "pytorch",
                "model": args.model,
                "seconds": round(time.time() - start),
                "steps": step,
                "images_seen": step * args.batch,
                "test_images": len(test),
                "test_nats": round(test_nll(len(test)), 3),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
