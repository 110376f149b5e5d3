#!/usr/bin/python3
"""Exports torchvision architectures with random weights for the lens tests.

For each architecture it writes NAME.traced.pt and NAME.scripted.pt, a sidecar NAME.traced.json /
NAME.scripted.json (input size, for the metadata lookup), and NAME.layers.json: for every module
the eager output shape and sum (float64) of its last call on a fixed input, recorded with forward
hooks. The C++ tests compare what the lens captures with these.

    /usr/bin/python3 tools/export_test_models.py OUT_DIR [--only resnet18,densenet121]
"""
import argparse
import json
import os

import torch
import torch.nn as nn
import torchvision
import torchvision.models as tvm

SIZE = 64


def shrink_classifier(model, features):
    """AlexNet and VGG carry 100M+ parameters in their classifier; keep the module structure
    (classifier.0 .. classifier.6) with small widths so the files stay small."""
    model.classifier = nn.Sequential(
        nn.Dropout(), nn.Linear(features, 64), nn.ReLU(inplace=True),
        nn.Dropout(), nn.Linear(64, 64), nn.ReLU(inplace=True), nn.Linear(64, 10))
    return model


def narrow_vgg19():
    """VGG-19's layout (configuration E: 16 convolutions, the same module paths features.0 ..
    features.36 and classifier.*) with an eighth of the widths, so the style-transfer layer
    defaults can be tested against VGG-19's names without its 550 MB of weights."""
    cfg = [c // 8 if isinstance(c, int) else c for c in tvm.vgg.cfgs["E"]]
    return shrink_classifier(tvm.vgg.VGG(tvm.vgg.make_layers(cfg), num_classes=10), 512 // 8 * 7 * 7)


class DeiTLike(nn.Module):
    """A DeiT-style ViT on torchvision's encoder: a class token and a distillation token before
    the 8 x 8 patches (2 prefix tokens), the head on the mean of the two, as DeiT's distilled
    model at inference."""

    def __init__(self):
        super().__init__()
        dim = 32
        self.conv_proj = nn.Conv2d(3, dim, kernel_size=8, stride=8)
        self.class_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.dist_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.encoder = tvm.vision_transformer.Encoder(2 + 64, 2, 2, dim, 64, 0.0, 0.0)
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        n = x.shape[0]
        x = torch.cat([self.class_token.expand(n, -1, -1), self.dist_token.expand(n, -1, -1), x], dim=1)
        x = self.encoder(x)
        return self.head((x[:, 0] + x[:, 1]) / 2)


def build_transformer(name):
    """Small versions of torchvision's transformers at 64 x 64 (the same classes and module paths
    as vit_b_16, swin_t and convnext_tiny; widths and depths cut so the tests stay quick; 8 x 8
    patches of 8 pixels, and channel counts that differ from every grid side, so that each
    layer's layout is the only one its shape fits)."""
    if name == "vit":
        model = tvm.VisionTransformer(image_size=SIZE, patch_size=8, num_layers=2, num_heads=2,
                                      hidden_dim=32, mlp_dim=64, num_classes=10)
        for p in model.heads.parameters():  # torchvision zero-initializes the head
            nn.init.normal_(p, std=0.5)
        return model
    if name == "deit":
        return DeiTLike()
    if name == "swin":
        return tvm.swin_transformer.SwinTransformer(patch_size=[4, 4], embed_dim=24, depths=[2, 2],
                                                    num_heads=[2, 2], window_size=[4, 4], num_classes=10)
    if name == "convnext":
        cfg = tvm.convnext.CNBlockConfig
        return tvm.convnext.ConvNeXt([cfg(24, 48, 1), cfg(48, None, 1)], num_classes=10)
    return None


def build(name):
    torch.manual_seed(0)
    transformer = build_transformer(name)
    if transformer is not None:
        return transformer
    if name == "alexnet":
        return shrink_classifier(tvm.alexnet(num_classes=10), 256 * 6 * 6)
    if name == "vgg11":
        return shrink_classifier(tvm.vgg11(num_classes=10), 512 * 7 * 7)
    if name == "vgg19":
        return narrow_vgg19()
    if name == "resnet18":
        return tvm.resnet18(num_classes=10)
    if name == "densenet121":
        return tvm.densenet121(num_classes=10)
    if name == "googlenet":
        return tvm.googlenet(num_classes=10, aux_logits=False, init_weights=True)
    if name == "mobilenet_v2":
        return tvm.mobilenet_v2(num_classes=10)
    if name == "squeezenet1_0":
        return tvm.squeezenet1_0(num_classes=10)
    raise SystemExit(f"unknown architecture {name}")


ALL = ["alexnet", "vgg11", "vgg19", "resnet18", "densenet121", "googlenet", "mobilenet_v2", "squeezenet1_0",
       "vit", "deit", "swin", "convnext"]


def probe_input():
    """The fixed input the C++ test rebuilds: ((i % 251) / 251 - 0.5) over 1x3x64x64."""
    n = 3 * SIZE * SIZE
    return ((torch.arange(n, dtype=torch.float64) % 251) / 251.0 - 0.5).reshape(1, 3, SIZE, SIZE)


def record_layers(model):
    records = {}

    def hook(name):
        def fn(_module, _inputs, output):
            if isinstance(output, torch.Tensor):
                records[name] = {"shape": list(output.shape), "sum": float(output.double().sum())}
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    with torch.no_grad():
        logits = model(probe_input().float())
    for h in handles:
        h.remove()
    return records, logits


class NmsUser(nn.Module):
    """A classifier whose forward calls torchvision's C++ operator nms, as detection models do:
    netlens does not provide it, and loading must say so (scripted only)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 10)

    def forward(self, x):
        boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        keep = torchvision.ops.nms(boxes, torch.ones(1), 0.5)
        return self.fc(x.mean([2, 3])) * keep.numel()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(os.cpu_count() or 1)
    for name in (args.only.split(",") if args.only else ALL):
        model = build(name).eval()
        records, logits = record_layers(model)
        example = probe_input().float()
        traced = torch.jit.trace(model, example, check_trace=False)  # ViT's re-run check fails spuriously
        scripted = torch.jit.script(model)
        for kind, module in (("traced", traced), ("scripted", scripted)):
            module.save(os.path.join(args.out, f"{name}.{kind}.pt"))
            with open(os.path.join(args.out, f"{name}.{kind}.json"), "w") as f:
                json.dump({"input_size": [SIZE, SIZE], "name": name}, f)
        with open(os.path.join(args.out, f"{name}.layers.json"), "w") as f:
            json.dump({"layers": records, "logits": logits[0].double().tolist()}, f)
        print(f"exported {name}: {len(records)} modules", flush=True)
    if not args.only:
        torch.jit.script(NmsUser().eval()).save(os.path.join(args.out, "nms_user.scripted.pt"))


if __name__ == "__main__":
    main()
