"""The Python module's overhead against the CLI on the same work (BENCHMARKS.md, "Python").

Each round runs, as separate processes and alternately, `pixelrnn eval --limit N` against a
Python process doing `load` + `dataset` + `nll` of the same N images, and `pixelrnn sample
--count K` against `load` + `sample(K)`; both sides pay their start-up, model loading and data
reading, so the ratio is of whole jobs. Prints one JSON line per measurement and a summary line
with the median seconds and Python/CLI ratios (1.0 = no overhead).

    python python/bench/overhead.py --run pretrained/binarized-mnist-diagonal-bilstm \\
        --bin target/release/pixelrnn --data-dir ../shared/data/mnist --images 1000 --samples 256

Run it with the module built in release (`maturin develop --release`) and the release binary.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PYTHON_NLL = """
import sys, pixelrnn
model = pixelrnn.load(sys.argv[1])
images, _ = model.dataset("test", limit=int(sys.argv[2]), data_dir=sys.argv[3] or None)
model.nll(images, batch_size=64)
"""

PYTHON_SAMPLE = """
import sys, pixelrnn
pixelrnn.load(sys.argv[1]).sample(int(sys.argv[2]), seed=1)
"""


def timed(argv, env):
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--bin", default="target/release/pixelrnn")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    times = {key: [] for key in ("cli_nll", "python_nll", "cli_sample", "python_sample")}
    with tempfile.TemporaryDirectory() as scratch:
        jobs = {
            "cli_nll": [args.bin, "eval", "--run", args.run, "--limit", str(args.images), "--batch-size", "64", "--json", *data],
            "python_nll": [sys.executable, "-c", PYTHON_NLL, args.run, str(args.images), args.data_dir],
            "cli_sample": [args.bin, "sample", "--run", args.run, "--count", str(args.samples), "--seed", "1", "--out", os.path.join(scratch, "s.png")],
            "python_sample": [sys.executable, "-c", PYTHON_SAMPLE, args.run, str(args.samples)],
        }
        for round_ in range(args.rounds):
            for key, argv in jobs.items():
                if key == "cli_sample":
                    # A fresh output each time: sample refuses nothing, but keep runs alike.
                    argv[-1] = os.path.join(scratch, f"s{round_}.png")
                seconds = timed(argv, env)
                times[key].append(seconds)
                print(json.dumps({"job": key, "round": round_, "seconds": round(seconds, 4)}), flush=True)
    median = {key: statistics.median(v) for key, v in times.items()}
    summary = {
        "images": args.images,
        "samples": args.samples,
        "threads": args.threads,
        "median_seconds": {k: round(v, 3) for k, v in median.items()},
        "nll_python_over_cli": round(median["python_nll"] / median["cli_nll"], 4),
        "sample_python_over_cli": round(median["python_sample"] / median["cli_sample"], 4),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
