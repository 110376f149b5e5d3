#!/usr/bin/python3
"""How far a style transfer moved towards its painting, measured independently of netlens' own
losses: Gram matrices (G = F F^T / (h w)) of the shared SqueezeNet 1.0's first three Fire modules
(features.3, .4, .5; not netlens' default style layers) and the relative Frobenius distance
|G(x) - G(s)| / |G(s)| per module, summed; and the colours' distance (mean and covariance of RGB).

    /usr/bin/python3 tools/style_measure.py RESULT.png STYLE.jpg [CONTENT.png]

Prints one line per picture given (result first, then the content if given, the "before").
Each picture and the painting are read as netlens reads them (longer side resized to the
result's longer side). docs/performance.md and README cite its figures for the style defaults.
"""
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import squeezenet_eager  # noqa: E402


def read(path, longer):
    img = Image.open(path).convert("RGB")
    f = longer / max(img.size)
    img = img.resize((max(8, round(img.size[0] * f)), max(8, round(img.size[1] * f))), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.float64) / 255).permute(2, 0, 1)[None]


def grams(model, x):
    out = []
    h = model.preprocess(x)
    for i, layer in enumerate(model.features):
        h = layer(h)
        if i in (3, 4, 5):
            f = h[0].reshape(h.shape[1], -1)
            out.append(f @ f.T / f.shape[1])
    return out


def colours(x):
    f = x[0].reshape(3, -1)
    return f.mean(1), torch.cov(f)


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    _, model = squeezenet_eager.load()
    longer = max(Image.open(sys.argv[1]).size)
    style = read(sys.argv[2], longer)
    with torch.no_grad():
        gs = grams(model, style)
        ms, cs = colours(style)
        for path in [sys.argv[1]] + sys.argv[3:]:
            x = read(path, longer)
            d = [float((g - s).norm() / s.norm()) for g, s in zip(grams(model, x), gs)]
            m, c = colours(x)
            colour = float((m - ms).norm() + (c - cs).norm() / cs.norm())
            print(f"{path}: gram distance {sum(d):.3f} (fire 3/4/5: {d[0]:.3f} {d[1]:.3f} {d[2]:.3f}); "
                  f"colour distance {colour:.3f}")


if __name__ == "__main__":
    main()
