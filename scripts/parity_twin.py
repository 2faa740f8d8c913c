"""The PyTorch side of scripts/parity-vs-pytorch.sh: data, initial weights, batch order, and
the twin's training on them; then the comparison with what pixelrnn did.

  data    --spec S --mnist-dir D | --cifar-dir D --out DIR   the images both sides use:
          binarized MNIST as the three .amat files pixelrnn reads (Bernoulli(v/255), numpy
          generators seeded 0 and 1, as python/bench/twin_quality.py; train = first 50,000, valid = last
          10,000 training images, test = the 10,000 test images); CIFAR-10 is read in place
          (pixelrnn: train = first 45,000, valid = last 5,000 of the five training batches).
  init    --spec S --seed N --out FILE      the twin's initial weights (PyTorch's default init)
  order   --spec S --seed N --steps N --out FILE   the batches: epoch permutations of the
          training split, one line of indices per step (pixelrnn: train --batch-order)
  train   --spec S --weights FILE --order FILE --steps N --json OUT [--grads-out FILE]
          [--epsilon E] [--lr-decay D] [--test-limit N] [--seconds S]: Adam from those weights
          on those batches, learning rate 1e-3 * D^k at step k = 0, 1, ... (pixelrnn's train
          --lr-decay; D = 1 by default), for at most S seconds of training when given; writes
          the per-step losses, the test NLL (nats for binary specs, bits/dim for m2) and, with
          --grads-out, the first step's gradients (state_dict names)
  compare --ours-grads F --twin-grads F --ours-losses F --twin-json F   one JSON line:
          relative differences of the step-1 gradients per tensor and of the per-step losses
  windows --spec S --ours-losses F --twin-json F [--window W]   one JSON line: pixelrnn - twin,
          the mean loss of every W steps and of all steps (bits/dim for m2, else nats/image)
"""
import argparse
import time
import gzip
import json
import math
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

BINARY = {"m1", "m3", "m4"}


def twin(args):
    """The repository's PyTorch twin (python/pixelrnn/twin.py): its `build(spec)`."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "bench"))
    from twin_load import twin as module  # noqa: E402
    return module.build


def mnist_images(d, name):
    raw = gzip.open(os.path.join(d, name), "rb").read()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)


def binarized(d):
    train = np.random.default_rng(0).random((60000, 28, 28)) < mnist_images(d, "train-images-idx3-ubyte.gz") / 255
    test = np.random.default_rng(1).random((10000, 28, 28)) < mnist_images(d, "t10k-images-idx3-ubyte.gz") / 255
    return train.astype(np.uint8), test.astype(np.uint8)


def cifar(d):
    parts = []
    for i in range(1, 6):
        raw = np.fromfile(os.path.join(d, f"data_batch_{i}.bin"), dtype=np.uint8).reshape(-1, 3073)
        parts.append(raw[:, 1:].reshape(-1, 3, 32, 32))
    images = np.concatenate(parts)
    return images[:45000], images[45000:]


def write_amat(path, images):
    with open(path, "w") as f:
        for im in images.reshape(len(images), -1):
            f.write(" ".join("1" if v else "0" for v in im))
            f.write("\n")


def cmd_data(args):
    os.makedirs(args.out, exist_ok=True)
    train, test = binarized(args.mnist_dir)
    write_amat(os.path.join(args.out, "binarized_mnist_train.amat"), train[:50000])
    write_amat(os.path.join(args.out, "binarized_mnist_valid.amat"), train[50000:])
    write_amat(os.path.join(args.out, "binarized_mnist_test.amat"), test)
    np.savez(os.path.join(args.out, "images.npz"), train=train[:50000], test=test)


def load_data(args):
    """(train, test) as uint8 arrays (N, C, H, W)."""
    if args.spec in BINARY:
        z = np.load(os.path.join(args.data, "images.npz"))
        return z["train"][:, None], z["test"][:, None]
    return cifar(args.data)


def batch_size(spec):
    return 16 if spec == "m2" else 32


def cmd_init(args):
    torch.manual_seed(args.seed)
    model = twin(args)(args.spec)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args.out)


def cmd_order(args):
    n = 45000 if args.spec == "m2" else 50000
    b = batch_size(args.spec)
    rng = np.random.default_rng(args.seed)
    lines, perm = [], []
    while len(lines) < args.steps:
        if len(perm) < b:
            perm = list(rng.permutation(n))
        lines.append(" ".join(str(i) for i in perm[:b]))
        perm = perm[b:]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")


def loss_of(spec, model, images):
    """Mean over the batch of the per-image NLL in nats; and the per-image NLLs."""
    per = model.nll(images)  # raw integer images; the twin scales them as pixelrnn does
    return per.mean(), per


def cmd_train(args):
    torch.set_num_threads(args.threads)
    model = twin(args)(args.spec)
    model.load_state_dict(load_file(args.weights), strict=True)
    train, test = load_data(args)
    train_t = torch.from_numpy(train)
    order = [list(map(int, line.split())) for line in open(args.order) if line.strip()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=args.epsilon)
    losses = []
    started = time.time()
    for step in range(args.steps):
        if args.seconds and time.time() - started >= args.seconds:
            break
        x = train_t[order[step]]
        loss, _ = loss_of(args.spec, model, x)
        opt.zero_grad()
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = 1e-3 * args.lr_decay ** step
        if step == 0 and args.grads_out:
            save_file({k: p.grad.detach().clone().contiguous() for k, p in model.named_parameters()}, args.grads_out)
        opt.step()
        losses.append(loss.item())
    model.eval()
    total, count = 0.0, 0
    test_t = torch.from_numpy(test[: args.test_limit] if args.test_limit else test)
    with torch.no_grad():
        for chunk in test_t.split(250):
            _, per = loss_of(args.spec, model, chunk)
            total += per.sum().item()
            count += len(chunk)
    nats = total / count
    dims = test.shape[1] * test.shape[2] * test.shape[3]
    result = {"spec": args.spec, "steps": len(losses), "lr_decay": args.lr_decay, "losses": losses, "test_images": count, "test_nats": nats,
              "test_bits_per_dim": nats / (dims * math.log(2))}
    json.dump(result, open(args.json, "w"))


def step_losses(metrics):
    """pixelrnn's per-step training losses (nats/image) from a run's metrics.jsonl."""
    return [e["loss_nats"] for e in map(json.loads, filter(str.strip, open(metrics))) if e.get("event") == "step"]


def cmd_windows(args):
    """The paired difference (pixelrnn - twin) of the mean loss per window of steps."""
    ours, twin = step_losses(args.ours_losses), json.load(open(args.twin_json))
    theirs = twin["losses"]
    if len(ours) != len(theirs):
        sys.exit(f"{args.ours_losses}: {len(ours)} step losses, {args.twin_json}: {len(theirs)}")
    scale = twin["test_bits_per_dim"] / twin["test_nats"] if args.spec not in BINARY else 1.0
    w = args.window
    diffs = [sum(a - b for a, b in zip(ours[i:i + w], theirs[i:i + w])) / len(ours[i:i + w]) * scale
             for i in range(0, len(ours), w)]
    total = sum(a - b for a, b in zip(ours, theirs)) / len(ours) * scale
    print(json.dumps({"spec": args.spec, "window": w, "window_differences": diffs, "all_steps_difference": total}))


def cmd_compare(args):
    ours, theirs = load_file(args.ours_grads), load_file(args.twin_grads)
    worst_grad, per_tensor = 0.0, {}
    for name, g in theirs.items():
        o = ours[name]
        mask_name = name.rsplit(".", 1)[0] + ".mask"
        if mask_name in ours and name.endswith("weight"):
            # A masked-out tap has no gradient in the twin (weight * mask); compare what passes.
            o, g = o * ours[mask_name], g * ours[mask_name]
        scale = g.norm().item()
        rel = (o - g).norm().item() / max(scale, 1e-30)
        per_tensor[name] = {"twin_norm": scale, "ours_norm": o.norm().item(), "relative_difference": rel}
        worst_grad = max(worst_grad, rel)
    ours_losses = step_losses(args.ours_losses)
    twin_losses = json.load(open(args.twin_json))["losses"]
    n = min(len(ours_losses), len(twin_losses))
    loss_rel = [abs(a - b) / abs(b) for a, b in zip(ours_losses[:n], twin_losses[:n])]
    print(json.dumps({"spec": args.spec, "step1_loss_ours": ours_losses[0], "step1_loss_twin": twin_losses[0],
                      "grad_worst_relative_difference": worst_grad, "steps_compared": n,
                      "loss_worst_relative_difference": max(loss_rel), "losses_ours": ours_losses[:n],
                      "losses_twin": twin_losses[:n], "gradients": per_tensor}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["data", "init", "order", "train", "compare", "windows"])
    ap.add_argument("--spec", choices=["m1", "m2", "m3", "m4"], default="m1")
    ap.add_argument("--mnist-dir")
    ap.add_argument("--data", help="the folder `data` wrote (binary specs) or the CIFAR-10 folder (m2)")
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--weights")
    ap.add_argument("--order")
    ap.add_argument("--json")
    ap.add_argument("--grads-out")
    ap.add_argument("--epsilon", type=float, default=1e-8)
    ap.add_argument("--lr-decay", type=float, default=1.0, help="train: learning rate 1e-3 * D^step, as pixelrnn's --lr-decay")
    ap.add_argument("--test-limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=0, help="train: also stop after this many seconds of training")
    ap.add_argument("--ours-grads")
    ap.add_argument("--twin-grads")
    ap.add_argument("--ours-losses")
    ap.add_argument("--twin-json")
    ap.add_argument("--window", type=int, default=100, help="windows: steps per window")
    args = ap.parse_args()
    {"data": cmd_data, "init": cmd_init, "order": cmd_order, "train": cmd_train, "compare": cmd_compare, "windows": cmd_windows}[args.command](args)


if __name__ == "__main__":
    main()
