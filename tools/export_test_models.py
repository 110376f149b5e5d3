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


def build(name):
    torch.manual_seed(0)
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


ALL = ["alexnet", "vgg11", "vgg19", "resnet18", "densenet121", "googlenet", "mobilenet_v2", "squeezenet1_0"]


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
        traced = torch.jit.trace(model, example)
        scripted = torch.jit.script(model)
        for kind, module in (("traced", traced), ("scripted", scripted)):
            module.save(os.path.join(args.out, f"{name}.{kind}.pt"))
            with open(os.path.join(args.out, f"{name}.{kind}.json"), "w") as f:
                json.dump({"input_size": [SIZE, SIZE], "name": name}, f)
        with open(os.path.join(args.out, f"{name}.layers.json"), "w") as f:
            json.dump({"layers": records, "logits": logits[0].double().tolist()}, f)
        print(f"exported {name}: {len(records)} modules", flush=True)


if __name__ == "__main__":
    main()
