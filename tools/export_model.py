#!/usr/bin/python3
"""Exports a torchvision classifier to TorchScript with netlens metadata embedded.

    /usr/bin/python3 tools/export_model.py resnet18 --pretrained -o resnet18.pt
    /usr/bin/python3 tools/export_model.py densenet121 -o densenet121.pt --script

The archive carries an extra file `netlens.json` (input size, channel order, mean/std, labels),
which netlens reads at load time, so `netlens guided --model resnet18.pt --image cat.jpg` needs no
further flags. --pretrained loads torchvision's ImageNet weights, which torchvision downloads on
first use (needs internet, or the weights already in the torch hub cache); without it the weights
are random (for tests). ImageNet class names come from torchvision's weight metadata, offline.
"""
import argparse
import json

import torch
import torchvision.models as tvm

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="torchvision model name, e.g. resnet18, vgg16, densenet121")
    ap.add_argument("-o", "--output", required=True, help="output .pt file")
    ap.add_argument("--pretrained", action="store_true", help="ImageNet weights (downloads)")
    ap.add_argument("--script", action="store_true", help="torch.jit.script instead of trace")
    ap.add_argument("--input-size", type=int, default=224)
    args = ap.parse_args()

    try:
        builder = getattr(tvm, args.name)
    except AttributeError:
        raise SystemExit(f"unknown torchvision model {args.name!r}")
    weights_enum = tvm.get_model_weights(args.name) if hasattr(tvm, "get_model_weights") else None
    default_weights = weights_enum.DEFAULT if weights_enum is not None else None
    kwargs = {}
    if args.name in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = False
        kwargs["init_weights"] = not args.pretrained
    model = builder(weights=default_weights if args.pretrained else None, **kwargs).eval()
    if not args.pretrained and args.name.startswith("vit_"):
        # torchvision initializes ViT's head to zero: every class would get the same logit and
        # every gradient would vanish. Random weights get a random head (seeded).
        torch.manual_seed(0)
        for p in model.heads.parameters():
            torch.nn.init.normal_(p, std=0.02)

    labels = list(default_weights.meta["categories"]) if default_weights is not None else None
    meta = {"name": args.name, "input_size": [args.input_size, args.input_size], "channels": 3,
            "channel_order": "rgb", "mean": MEAN, "std": STD, "crop_pct": 0.875,
            "pretrained": args.pretrained, "exporter": "tools/export_model.py"}
    if labels and model(torch.zeros(1, 3, args.input_size, args.input_size)).shape[1] == len(labels):
        meta["labels"] = labels
    example = torch.zeros(1, 3, args.input_size, args.input_size)
    # check_trace=False: the tracer's re-run check fails on ViT (its graphs name their constants
    # differently across invocations) although the trace is right.
    module = torch.jit.script(model) if args.script else torch.jit.trace(model, example, check_trace=False)
    torch.jit.save(module, args.output, _extra_files={"netlens.json": json.dumps(meta)})
    print(f"wrote {args.output} ({'scripted' if args.script else 'traced'}, "
          f"{'pretrained' if args.pretrained else 'random'} weights, "
          f"{len(meta.get('labels', []))} labels)")


if __name__ == "__main__":
    main()
