"""Times the PyTorch twin (python/pixelrnn/twin.py) on the benchmark specs M1-M6
(docs/bench-specs.md; M5 and M6 are its NativeModel) the way `pixelrnn bench` times pixelrnn: one JSON line per mode with the
same keys (framework, version, model, mode, device, threads, batch, params, warmup, steps,
median_step_s, min_step_s, images_per_sec, loss, loss_unit).

    python python/bench/twin_bench.py --model m1 --mode train --steps 10 --warmup 3 --threads 2

Modes (docs/bench-specs.md, "Conventions"):
  train   zero grad + forward + loss + backward + Adam(lr 1e-3) step;
  infer   forward + loss under torch.inference_mode(), model.eval();
  sample  naive generation, one full forward pass per sub-pixel (what public PixelCNN code
          does): the median pass is timed and images/s scaled to a whole batch (H*W*C passes);
          M6 draws from its logistic mixture (component, then the logistic's quantile).
Loss: binary specs nats per image (sum over pixels, mean over the batch); RGB specs (M2, M5,
M6) bits/dim. Inputs: random images from a generator seeded 0 (binary {0, 1}; RGB 0..255).
"""

import argparse
import json
import math
import statistics
import time

import torch

from twin_load import twin

BATCH = {"m1": 32, "m2": 16, "m3": 32, "m4": 32, "m5": 16, "m6": 16}
SHAPE = {"m1": (1, 28, 28), "m2": (3, 32, 32), "m3": (1, 28, 28), "m4": (1, 28, 28), "m5": (3, 32, 32), "m6": (3, 32, 32)}
RGB = {"m2", "m5", "m6"}


def build(name):
    """The twin of spec ``name``: M1-M4 in the PyTorch layout, M5 and M6 the NativeModel."""
    return twin.build_native(name) if name in twin.NATIVE_SPECS else twin.build(name)


def loss_of(name, model, images):
    """Mean NLL of a batch: nats per image, or bits/dim for the RGB specs."""
    nats = model.nll(images).mean()
    if name in RGB:
        return nats / (math.log(2.0) * images[0].numel())
    return nats


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def sample_step(name, model, canvas, order, counter):
    """One naive sampling pass: the whole model on the canvas, one sub-pixel drawn."""
    r, col, ch = order[counter[0] % len(order)]
    counter[0] += 1
    with torch.inference_mode():
        logits = model(canvas)
        levels = model.levels
        mixture = getattr(model, "mixture", None)
        if mixture is not None:
            per = mixture.params_per_subpixel
            canvas[:, ch, r, col] = mixture.sample(logits[:, ch * per:(ch + 1) * per, r, col], canvas[:, :ch, r, col])
        elif levels == 2:
            canvas[:, ch, r, col] = torch.bernoulli(torch.sigmoid(logits[:, ch, r, col])).long()
        else:
            probs = torch.softmax(logits[:, ch * levels:(ch + 1) * levels, r, col], dim=1)
            canvas[:, ch, r, col] = torch.multinomial(probs, 1).squeeze(1)
    return torch.zeros(())


def bench(name, steps, warmup, threads, modes, device="cpu", batch=None):
    torch.manual_seed(0)
    model = build(name).to(device)
    batch = batch or BATCH[name]
    c, hh, ww = SHAPE[name]
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, model.levels, (batch, c, hh, ww), generator=generator).to(device)
    params = sum(p.numel() for p in model.parameters())
    for mode in modes:
        if mode == "train":
            model.train()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

            def step():
                optimizer.zero_grad(set_to_none=True)
                loss = loss_of(name, model, images)
                loss.backward()
                optimizer.step()
                return loss.detach()

        elif mode == "sample":
            model.eval()
            order = [(r, col, ch) for r in range(hh) for col in range(ww) for ch in range(c)]
            canvas = torch.zeros_like(images)
            counter = [0]

            def step():
                return sample_step(name, model, canvas, order, counter)

        else:
            model.eval()

            def step():
                with torch.inference_mode():
                    return loss_of(name, model, images)

        for _ in range(warmup):
            step()
        sync(device)
        times, loss = [], None
        for _ in range(steps):
            start = time.perf_counter()
            loss = step()
            sync(device)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        per_batch = median * c * hh * ww if mode == "sample" else median
        print(
            json.dumps(
                dict(
                    framework="pytorch",
                    version=torch.__version__,
                    model=name,
                    mode=mode,
                    device=device,
                    threads=threads,
                    batch=batch,
                    params=params,
                    warmup=warmup,
                    steps=steps,
                    median_step_s=round(median, 5),
                    min_step_s=round(min(times), 5),
                    images_per_sec=round(batch / per_batch, 4),
                    loss=round(float(loss), 4),
                    loss_unit="bits/dim" if name in RGB else "nats/image",
                )
            ),
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(BATCH), required=True)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", choices=["train", "infer", "sample", "both"], default="both", help="both = train and infer")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (GPU timing synchronises the device)")
    parser.add_argument("--batch", type=int, default=None, help="override the spec's batch size")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    modes = ["train", "infer"] if args.mode == "both" else [args.mode]
    bench(args.model, args.steps, args.warmup, args.threads, modes, args.device, args.batch)


if __name__ == "__main__":
    main()
