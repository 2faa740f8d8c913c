"""The PyTorch twin's side of scripts/twin-check.sh: loads weights exported by
`pixelrnn export --layout pytorch` into the twin (torch_ref.py's model of the spec) with
load_state_dict(strict=True), and prints, as one JSON line, its per-image NLL in nats of the
images `pixelrnn eval --save-images` wrote (raw uint8 [N][C][H][W])."""
import argparse
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

parser = argparse.ArgumentParser()
parser.add_argument("--twin-dir", required=True)
parser.add_argument("--spec", required=True, choices=["m1", "m2", "m3", "m4"])
parser.add_argument("--weights", required=True)
parser.add_argument("--images", required=True)
args = parser.parse_args()
sys.path.insert(0, args.twin_dir)
from torch_ref import build  # noqa: E402

torch.set_num_threads(2)
model = build(args.spec).eval()
model.load_state_dict(load_file(args.weights), strict=True)
rgb = args.spec == "m2"
c, s = (3, 32) if rgb else (1, 28)
raw = np.fromfile(args.images, dtype=np.uint8)
images = torch.from_numpy(raw.reshape(-1, c, s, s).astype(np.int64))
nll = []
with torch.no_grad():
    for chunk in images.split(64):
        if rgb:
            out = model(chunk.float() / 127.5 - 1.0).view(chunk.shape[0], 3, 256, s, s)
            nll += F.cross_entropy(out.transpose(1, 2), chunk, reduction="none").flatten(1).sum(1).tolist()
        else:
            x = chunk.float()
            nll += F.binary_cross_entropy_with_logits(model(x), x, reduction="none").flatten(1).sum(1).tolist()
print(json.dumps({"spec": args.spec, "images": len(nll), "per_image_nats": nll}))
