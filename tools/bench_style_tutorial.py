#!/usr/bin/python3
"""Times the PyTorch neural-style tutorial's loop (Gatys; pytorch.org/tutorials/advanced/
neural_style_tutorial.html: content and style loss modules inserted after chosen layers of a
Sequential, the model cut after the last loss, L-BFGS on the input image with a closure, one
"run" per closure evaluation) on the shared SqueezeNet, with the same layers, size and step
count as `netlens style`, for docs/performance.md.

  /usr/bin/python3 tools/bench_style_tutorial.py ../shared/models/squeezenet1_0.pt \
      ../shared/models/images/cat.png ../shared/models/images/starry_night.jpg --size 256 --steps 100
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image


def gram_matrix(x):
    a, b, c, d = x.size()
    features = x.reshape(a * b, c * d)
    return torch.mm(features, features.t()).div(a * b * c * d)


class ContentLoss(nn.Module):
    def __init__(self, target):
        super().__init__()
        self.target = target.detach()
        self.loss = 0

    def forward(self, x):
        self.loss = F.mse_loss(x, self.target)
        return x


class StyleLoss(nn.Module):
    def __init__(self, target_feature):
        super().__init__()
        self.target = gram_matrix(target_feature).detach()
        self.loss = 0

    def forward(self, x):
        self.loss = F.mse_loss(gram_matrix(x), self.target)
        return x


def load(path, longer):
    img = Image.open(path).convert("RGB")
    f = longer / max(img.size)
    img = img.resize((round(img.size[0] * f), round(img.size[1] * f)), Image.BICUBIC)
    return torch.tensor(list(img.getdata()), dtype=torch.float32).view(img.size[1], img.size[0], 3).permute(2, 0, 1)[None].contiguous() / 255


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("content")
    ap.add_argument("style")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--content-layers", default="8")
    ap.add_argument("--style-layers", default="0,3,5,8,10")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    scripted = torch.jit.load(args.model).eval()
    features = dict(scripted.features.named_children())  # the top-level feature blocks
    content_idx = [int(i) for i in args.content_layers.split(",")]
    style_idx = [int(i) for i in args.style_layers.split(",")]
    content_img = load(args.content, args.size)
    style_img = F.interpolate(load(args.style, args.size), size=content_img.shape[2:], mode="bilinear")
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    class Normalization(nn.Module):
        def forward(self, x):
            return scripted.preprocess((x - mean) / std)

    model = nn.Sequential(Normalization())
    content_losses, style_losses = [], []
    last = max(content_idx + style_idx)
    for i in range(last + 1):
        block = features[str(i)]
        if block.original_name == "ReLU":  # as the tutorial: out of place, so losses keep their input
            block = nn.ReLU(inplace=False)
        model.add_module(str(i), block)
        if i in content_idx:
            target = model(content_img).detach()
            loss = ContentLoss(target)
            model.add_module(f"content_{i}", loss)
            content_losses.append(loss)
        if i in style_idx:
            target = model(style_img).detach()
            loss = StyleLoss(target)
            model.add_module(f"style_{i}", loss)
            style_losses.append(loss)
    for p in model.parameters():
        p.requires_grad_(False)
    input_img = content_img.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([input_img])
    run = [0]
    start = time.perf_counter()
    while run[0] <= args.steps:
        def closure():
            with torch.no_grad():
                input_img.clamp_(0, 1)
            optimizer.zero_grad()
            model(input_img)
            loss = 1e6 * sum(sl.loss for sl in style_losses) + sum(cl.loss for cl in content_losses)
            loss.backward()
            run[0] += 1
            return loss
        optimizer.step(closure)
    seconds = time.perf_counter() - start
    print(f"tutorial loop: {run[0]} evaluations in {seconds:.2f} s = {run[0] / seconds:.2f} steps/s "
          f"({content_img.shape[3]}x{content_img.shape[2]}, {args.threads} threads, torch {torch.__version__})")


if __name__ == "__main__":
    main()
