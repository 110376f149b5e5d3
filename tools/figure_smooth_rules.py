#!/usr/bin/python3
"""The guided rule on smooth activations, pictured and measured (docs/techniques.md).

Runs `netlens guided` on a ReLU network and on the same network trained with SiLU (both from
tools/train_fashion_mnist.py, --activation relu / silu), the SiLU one without and with
--smooth-activations, on a few Fashion-MNIST test images. Writes one figure (rows: images;
columns: input, ReLU guided, SiLU guided without the flag (= the vanilla gradient), SiLU guided
with it) and prints, per map, two sharpness figures: the share of the map's absolute mass in its
top 10% of pixels, and the share of its energy above a 3x3 box blur (high frequencies).

  /usr/bin/python3 tools/train_fashion_mnist.py --activation silu --out /tmp/fashion_silu.pt \\
      --assets /tmp/fashion_silu_assets
  /usr/bin/python3 tools/figure_smooth_rules.py ./build/netlens models/fashion_cnn.pt \\
      /tmp/fashion_silu.pt docs/images/smooth_rules_fashion.png
"""
import argparse
import os
import subprocess
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IMAGES = ["ankle_boot", "sneaker", "bag", "trouser"]


def run(netlens, model, image, out, *flags):
    subprocess.run([netlens, "guided", "--model", model, "--image", image, "--out", out, *flags],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    name = os.path.splitext(os.path.basename(image))[0]
    return np.load(os.path.join(out, f"{name}_guided.npy")).reshape(28, 28)


def sharpness(m):
    a = np.abs(m)
    top = np.sort(a.ravel())[::-1][: a.size // 10].sum() / a.sum()
    t = torch.from_numpy(m.astype(np.float64))[None, None]
    blurred = F.avg_pool2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    high = float(((t - blurred) ** 2).sum() / (t ** 2).sum())
    return top, high


def tile(m, scale=4):
    a = np.abs(m)
    a = a / max(a.max(), 1e-12)
    return np.kron(a, np.ones((scale, scale)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("netlens")
    ap.add_argument("relu_model")
    ap.add_argument("silu_model")
    ap.add_argument("figure")
    ap.add_argument("--assets", default="assets/fashion_mnist")
    args = ap.parse_args()
    rows = []
    columns = ["ReLU guided", "SiLU guided (flag off)", "SiLU guided --smooth-activations"]
    figures = {c: [] for c in columns}
    with tempfile.TemporaryDirectory() as tmp:
        for name in IMAGES:
            image = os.path.join(args.assets, f"{name}.png")
            maps = [run(args.netlens, args.relu_model, image, os.path.join(tmp, "relu")),
                    run(args.netlens, args.silu_model, image, os.path.join(tmp, "plain")),
                    run(args.netlens, args.silu_model, image, os.path.join(tmp, "smooth"), "--smooth-activations")]
            picture = np.asarray(Image.open(image).convert("L"), dtype=np.float64) / 255
            rows.append(np.concatenate([np.kron(picture, np.ones((4, 4)))] + [tile(m) for m in maps], axis=1))
            for c, m in zip(columns, maps):
                figures[c].append(sharpness(m))
    grid = np.concatenate(rows, axis=0)
    Image.fromarray((grid * 255).round().astype(np.uint8)).save(args.figure)
    print(f"wrote {args.figure} (columns: input, {', '.join(columns)})")
    print("| map | mass in the top 10% of pixels | energy above a 3x3 blur |")
    print("|---|---|---|")
    for c in columns:
        top = np.mean([f[0] for f in figures[c]])
        high = np.mean([f[1] for f in figures[c]])
        print(f"| {c} | {top:.3f} | {high:.3f} |")


if __name__ == "__main__":
    main()
