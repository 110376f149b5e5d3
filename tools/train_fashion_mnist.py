#!/usr/bin/python3
"""Trains netlens' bundled default model: a small CNN on Debian's Fashion-MNIST.

Reads the IDX files of Debian's `dataset-fashion-mnist` package, trains a five-convolution
network with a global-average-pooling head (so Grad-CAM on its last convolution is sharp) for
a few minutes on CPU, traces it to TorchScript with netlens metadata embedded as the extra file
`netlens.json`, and writes a few test-set images to assets/.

    /usr/bin/python3 tools/train_fashion_mnist.py --out models/fashion_cnn.pt --assets assets/fashion_mnist

`--activation silu` (or gelu) trains the same network with a smooth activation, for comparing
the guided rules on smooth activations (--smooth-activations) with ReLU's (docs/techniques.md).

`--arch vit` trains a small vision transformer instead (torchvision's VisionTransformer, the
module paths of vit_b_16: 4 blocks of 4 heads, width 64, 4 x 4 patches, so a 7 x 7 token grid
and a class token), the bundled models/fashion_vit.pt, for the transformer techniques on a model
that learned something (the README's ViT picture, Transformers tests of real behaviour):

    /usr/bin/python3 tools/train_fashion_mnist.py --arch vit --out models/fashion_vit.pt --assets ''
"""
import argparse
import gzip
import json
import os
import struct
import time
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm

DATA = "/usr/share/datasets/fashion-mnist"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MEAN, STD = 0.2860, 0.3530


def read_idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "silu": nn.SiLU, "gelu": nn.GELU}


class FashionCNN(nn.Module):
    def __init__(self, activation="relu"):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), act(),
            nn.Conv2d(32, 32, 3, padding=1), act(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), act(),
            nn.Conv2d(64, 64, 3, padding=1), act(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), act(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def fashion_vit():
    model = tvm.VisionTransformer(image_size=28, patch_size=4, num_layers=4, num_heads=4, hidden_dim=64,
                                  mlp_dim=128, num_classes=10, dropout=0.0)
    model.conv_proj = nn.Conv2d(1, 64, kernel_size=4, stride=4)  # gray input
    return model


def write_png_gray(path, img):
    """Writes an 8-bit grayscale PNG (no PIL on a bare Debian machine)."""
    h, w = img.shape
    raw = b"".join(b"\x00" + bytes(img[y].tolist()) for y in range(h))

    def chunk(tag, body):
        return (struct.pack(">I", len(body)) + tag + body +
                struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/fashion_cnn.pt")
    ap.add_argument("--assets", default="assets/fashion_mnist")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    ap.add_argument("--arch", choices=["cnn", "vit"], default="cnn")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(os.cpu_count() or 1)

    xtr = (read_idx("train-images-idx3-ubyte.gz").float() / 255 - MEAN) / STD
    ytr = read_idx("train-labels-idx1-ubyte.gz").long()
    xte_u8 = read_idx("t10k-images-idx3-ubyte.gz")
    xte = (xte_u8.float() / 255 - MEAN) / STD
    yte = read_idx("t10k-labels-idx1-ubyte.gz").long()
    xtr, xte = xtr[:, None], xte[:, None]

    model = FashionCNN(args.activation) if args.arch == "cnn" else fashion_vit()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3) if args.arch == "cnn" else \
        torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    steps = args.epochs * (len(xtr) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3 if args.arch == "cnn" else 2e-3, total_steps=steps)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr) - 127, 128):
            idx = perm[i:i + 128]
            xb = xtr[idx]
            if torch.rand(()) < 0.5:  # horizontal flip augmentation
                xb = xb.flip(3)
            loss = F.cross_entropy(model(xb), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            acc = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
                      for i in range(0, len(xte), 1000)) / len(xte)
        print(f"epoch {epoch + 1}: loss {loss.item():.3f} test accuracy {acc:.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)

    meta = {"name": "fashion_cnn" if args.arch == "cnn" else "fashion_vit", "input_size": [28, 28], "channels": 1,
            "channel_order": "gray", "mean": [MEAN], "std": [STD], "crop_pct": 1.0,
            "labels": LABELS, "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist)",
            "test_accuracy": round(acc, 4), "trainer": "tools/train_fashion_mnist.py"}
    # check_trace=False: the tracer's re-run check fails on ViT's graphs although the trace is right.
    traced = torch.jit.trace(model, torch.zeros(1, 1, 28, 28), check_trace=False)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.jit.save(traced, args.out, _extra_files={"netlens.json": json.dumps(meta, indent=1)})
    print(f"wrote {args.out} (test accuracy {acc:.4f})")

    if not args.assets:
        return
    os.makedirs(args.assets, exist_ok=True)
    written = set()
    for i in range(len(yte)):  # the first test image of each class
        c = int(yte[i])
        if c in written:
            continue
        written.add(c)
        name = LABELS[c].lower().replace("/", "_").replace(" ", "_").replace("-", "_")
        write_png_gray(os.path.join(args.assets, f"{name}.png"), xte_u8[i])
        if len(written) == 10:
            break
    print(f"wrote 10 test images to {args.assets}")


if __name__ == "__main__":
    main()
