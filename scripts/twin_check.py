"""The PyTorch side of scripts/twin-check.sh: loads weights written by
`pixelrnn export --layout pytorch` into the repository's twin (python/pixelrnn/twin.py) strictly,
masks included, and prints the NLL of each image (raw uint8 values, N x C x H x W) as JSON.

    python scripts/twin_check.py --spec m1 --weights run.safetensors --images run.images
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

parser = argparse.ArgumentParser()
parser.add_argument("--spec", required=True, choices=["m1", "m2", "m3", "m4"])
parser.add_argument("--weights", required=True)
parser.add_argument("--images", required=True)
args = parser.parse_args()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "bench"))
from twin_load import twin  # noqa: E402

torch.set_num_threads(2)
with open(args.weights, "rb") as f:
    model = twin.from_safetensors(f.read()).eval()
c, s = (3, 32) if args.spec == "m2" else (1, 28)
images = torch.from_numpy(np.fromfile(args.images, dtype=np.uint8).reshape(-1, c, s, s))
nll = []
with torch.no_grad():
    for chunk in images.split(64):
        nll += model.nll(chunk).tolist()
print(json.dumps({"spec": args.spec, "images": len(nll), "per_image_nats": nll}))
