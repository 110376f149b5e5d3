#!/usr/bin/python3
"""The guided rule on smooth activations, pictured and measured (docs/techniques.md).

Runs `netlens guided` on a ReLU network and on a SiLU network, the SiLU one without and with
--smooth-activations, on a few images. Writes one figure (rows: images; columns: input, ReLU
guided, SiLU guided without the flag (= the vanilla gradient), SiLU guided with it; colour maps
shown as the sum of |map| over channels) and prints, per map, three figures: the share of
the map's absolute mass (summed over channels) in its top 10% of pixels, the share of its
energy above a 3x3 box blur (high frequencies: pixel noise, or checkerboard artefacts of
strided convolutions; per channel, added up; above 1 where neighbours change sign), and the
correlation of the map's absolute value (summed over channels) with the Sobel gradient
magnitude of the input's luminance, both at the model's resolution (how closely the map follows
the picture's edges, which is what guided backprop is known for).

Fashion-MNIST: the bundled ReLU CNN and the same network trained with SiLU
(tools/train_fashion_mnist.py --activation relu / silu):

  /usr/bin/python3 tools/train_fashion_mnist.py --activation silu --out /tmp/fashion_silu.pt \\
      --assets /tmp/fashion_silu_assets
  /usr/bin/python3 tools/figure_smooth_rules.py ./build/netlens models/fashion_cnn.pt \\
      /tmp/fashion_silu.pt docs/images/smooth_rules_fashion.png

ImageNet: MobileNetV2 (ReLU6) against the pretrained EfficientNet-B0 (SiLU) from
tools/export_efficientnet_tfjs.py:

  /usr/bin/python3 tools/figure_smooth_rules.py ./build/netlens ../shared/models/mobilenet_v2.pt \\
      /tmp/effnet/efficientnet_b0.pt docs/images/smooth_rules_imagenet.jpg --assets ../shared/models/images \\
      --images astronaut.png,bird.png,cat.png,chelsea.png,coffee.png,dragonfly.png,grace_hopper.png,rocket.png \\
      --clip-percentile 99.5
"""
import argparse
import os
import subprocess
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

FASHION_IMAGES = "ankle_boot.png,sneaker.png,bag.png,trouser.png"


def run(netlens, model, image, out, *flags):
    """The guided map of `image`, channels first (C x H x W)."""
    subprocess.run([netlens, "guided", "--model", model, "--image", image, "--out", out, *flags],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    name = os.path.splitext(os.path.basename(image))[0]
    m = np.load(os.path.join(out, f"{name}_guided.npy"))
    return m.reshape(m.shape[-3:]) if m.ndim >= 3 else m[None]


def edges(picture):
    """Sobel gradient magnitude of the picture's luminance (H x W x 3 in [0, 1])."""
    y = torch.from_numpy(picture @ np.array([0.299, 0.587, 0.114]))[None, None]
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=y.dtype)
    padded = F.pad(y, (1, 1, 1, 1), mode="replicate")
    gx, gy = F.conv2d(padded, kx[None, None]), F.conv2d(padded, kx.t()[None, None])
    return (gx ** 2 + gy ** 2).sqrt()[0, 0].numpy()


def sharpness(m, picture):
    a = np.abs(m).sum(axis=0)
    top = np.sort(a.ravel())[::-1][: a.size // 10].sum() / a.sum()
    t = torch.from_numpy(m.astype(np.float64))[:, None]
    blurred = F.avg_pool2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    high = float(((t - blurred) ** 2).sum() / (t ** 2).sum())
    edge = float(np.corrcoef(a.ravel(), edges(picture).ravel())[0, 1])
    return top, high, edge


def tile(m, scale, percentile):
    a = np.abs(m).sum(axis=0)
    a = np.minimum(a / max(np.percentile(a, percentile), 1e-12), 1)
    return np.kron(a, np.ones((scale, scale)))[..., None].repeat(3, axis=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("netlens")
    ap.add_argument("relu_model")
    ap.add_argument("silu_model")
    ap.add_argument("figure")
    ap.add_argument("--assets", default="assets/fashion_mnist")
    ap.add_argument("--images", default=FASHION_IMAGES, help="comma-separated file names in --assets")
    ap.add_argument("--clip-percentile", type=float, default=100,
                    help="show each map over [0, this percentile of |map|] (100: its maximum)")
    ap.add_argument("--crop-pct", type=float, default=0.875, help="the models' crop_pct, for the input column")
    args = ap.parse_args()
    rows = []
    columns = ["ReLU guided", "SiLU guided (flag off)", "SiLU guided --smooth-activations"]
    figures = {c: [] for c in columns}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.images.split(","):
            image = os.path.join(args.assets, name)
            maps = [run(args.netlens, args.relu_model, image, os.path.join(tmp, "relu")),
                    run(args.netlens, args.silu_model, image, os.path.join(tmp, "plain")),
                    run(args.netlens, args.silu_model, image, os.path.join(tmp, "smooth"), "--smooth-activations")]
            h, w = maps[0].shape[-2:]
            scale = max(1, 112 // h)
            picture = Image.open(image).convert("RGB")
            # The input as the model saw it: the short side to size / crop_pct, centre-cropped.
            if picture.size != (w, h):
                f = max(h, w) / args.crop_pct / min(picture.size)
                picture = picture.resize((max(w, int(picture.width * f)), max(h, int(picture.height * f))), Image.BICUBIC)
            left, top = (picture.width - w) // 2, (picture.height - h) // 2
            picture = np.asarray(picture.crop((left, top, left + w, top + h)), dtype=np.float64) / 255
            rows.append(np.concatenate([np.kron(picture, np.ones((scale, scale, 1)))] + [tile(m, scale, args.clip_percentile) for m in maps], axis=1))
            for c, m in zip(columns, maps):
                figures[c].append(sharpness(m, picture))
    grid = np.concatenate(rows, axis=0)
    pixels = (grid * 255).round().astype(np.uint8)
    grey = (pixels == pixels[..., :1]).all()  # Fashion-MNIST: saved as a greyscale picture
    Image.fromarray(pixels[..., 0] if grey else pixels).save(args.figure)
    print(f"wrote {args.figure} (columns: input, {', '.join(columns)})")
    print("| map | mass in the top 10% of pixels | energy above a 3x3 blur | correlation with the input's edges |")
    print("|---|---|---|---|")
    for c in columns:
        top, high, edge = np.mean(figures[c], axis=0)
        print(f"| {c} | {top:.3f} | {high:.3f} | {edge:.3f} |")


if __name__ == "__main__":
    main()
