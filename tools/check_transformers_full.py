#!/usr/bin/python3
"""Parity at full size (issue 35): netlens against the peers' own code on torchvision's vit_b_16
and swin_t with random weights, traced and scripted, in float64, side by side in one run.

    PYTORCH_GRAD_CAM=/path/to/pytorch-grad-cam /usr/bin/python3 tools/check_transformers_full.py \
        [--netlens build/netlens] [--work /tmp/netlens_full] [--models vit_b_16,swin_t]

For each model the script builds it with random weights (ViT's zero head re-drawn, as
tools/export_model.py does), exports it traced and scripted with netlens metadata (ImageNet mean
and std, crop_pct 1, so that a 224 x 224 PNG reaches the model unresized), writes one 224 x 224
test picture, and compares, per export:
  * gradcam at the last block's first norm (ViT: encoder.layers.encoder_layer_11.ln_1, Swin:
    features.7.1.norm1 and the final norm) with pytorch-grad-cam's GradCAM and its users'
    reshape_transform (the raw map from its get_cam_image, as tools/check_gradcam_transformers.py);
  * attention-rollout (mean, discard 0.9) with a plain PyTorch rollout over the attentions
    nn.MultiheadAttention returns with need_weights=True (ViT);
  * saliency with autograd on the eager module (its absolute value, max over channels), and with
    autograd on the same TorchScript file loaded by PyTorch and made float64: a trace records the
    float32 constants it computed on the way (Swin's shifted-window mask, its relative position
    index), so the traced Swin differs from the eager module at 1e-9 whoever runs it.
It prints each pair's largest difference relative to the largest magnitude, and exits 1 when any
is above the issue's bounds (Grad-CAM 1e-6, rollout 1e-9, saliency against the file 1e-9).
"""
import argparse
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile
import types
import zlib

import numpy as np
import torch
import torchvision.models as tvm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_attention_transformers as attention_check  # noqa: E402  (its rollout)

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
TARGET = 3
BOUNDS = {"gradcam": 1e-6, "attention-rollout": 1e-9, "saliency": 1e-9}


def grad_cam_class():
    for name in ("cv2", "ttach", "matplotlib", "matplotlib.pyplot", "matplotlib.lines", "scipy", "scipy.ndimage",
                 "sklearn", "sklearn.decomposition", "tqdm"):
        stub = types.ModuleType(name)
        stub.__getattr__ = lambda attr: (lambda *args, **kwargs: None)
        sys.modules.setdefault(name, stub)
    package = types.ModuleType("pytorch_grad_cam")
    package.__path__ = [os.path.join(os.environ.get("PYTORCH_GRAD_CAM", "/tmp/pytorch-grad-cam"), "pytorch_grad_cam")]
    sys.modules["pytorch_grad_cam"] = package
    from pytorch_grad_cam.grad_cam import GradCAM  # noqa: E402
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402
    return GradCAM, ClassifierOutputTarget


def write_png_rgb(path, img):
    """An 8-bit RGB PNG from an H x W x 3 uint8 array (no PIL on a bare Debian machine)."""
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def test_picture():
    """224 x 224: smooth colour ramps with a bright disc and a dark square, so that maps vary."""
    y, x = np.mgrid[0:224, 0:224].astype(np.float64)
    img = np.stack([x / 223, y / 223, 0.5 + 0.5 * np.sin((x + y) / 17)], -1)
    img[(x - 150) ** 2 + (y - 80) ** 2 < 40 ** 2] = [0.95, 0.9, 0.2]
    img[140:200, 30:90] = [0.1, 0.15, 0.3]
    return np.round(img * 255).astype(np.uint8)


def build(name):
    torch.manual_seed(0)
    model = getattr(tvm, name)(weights=None).eval()
    if name.startswith("vit_"):
        for p in model.heads.parameters():
            torch.nn.init.normal_(p, std=0.02)
    return model


def export(model, path, scripted):
    meta = {"name": os.path.basename(path), "input_size": [224, 224], "channels": 3, "channel_order": "rgb",
            "mean": MEAN, "std": STD, "crop_pct": 1.0}
    example = torch.zeros(1, 3, 224, 224)
    module = torch.jit.script(model) if scripted else torch.jit.trace(model, example, check_trace=False)
    torch.jit.save(module, path, _extra_files={"netlens.json": json.dumps(meta)})


def run_netlens(netlens, technique, model_path, image, out, options):
    cmd = [netlens, technique, "--model", model_path, "--image", image, "--out", out, "--dtype", "float64",
           "--target", str(TARGET), "--log-level", "warn"] + options
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    files = sorted(glob.glob(os.path.join(out, "**", "*.npy"), recursive=True))
    return files


def load(files, part):
    found = [f for f in files if part in os.path.basename(f)]
    if len(found) != 1:
        raise SystemExit(f"expected one .npy with {part!r} among {files}")
    return torch.from_numpy(np.load(found[0])).double()


def relative(a, b):
    a, b = a.reshape(-1), b.reshape(-1)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def tokens(prefix, h, w):
    def transform(t):
        return t[:, prefix:, :].reshape(t.size(0), h, w, t.size(2)).transpose(2, 3).transpose(1, 2)
    return transform


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--netlens", default=os.path.join(os.path.dirname(__file__), "..", "build", "netlens"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--models", default="vit_b_16,swin_t")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="netlens_full_")
    os.makedirs(work, exist_ok=True)
    GradCAM, ClassifierOutputTarget = grad_cam_class()
    pixels = test_picture()
    image = os.path.join(work, "picture.png")
    write_png_rgb(image, pixels)
    x = ((torch.from_numpy(pixels).double() / 255 - torch.tensor(MEAN, dtype=torch.float64)) /
         torch.tensor(STD, dtype=torch.float64)).permute(2, 0, 1)[None].contiguous()
    failed = False
    for name in args.models.split(","):
        model = build(name)
        eager = build(name).double()
        eager.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
        if name.startswith("vit_"):
            cams = [("encoder.layers.encoder_layer_11.ln_1", tokens(1, 14, 14))]
        else:
            cams = [("features.7.1.norm1", lambda t: t.permute(0, 3, 1, 2)), ("norm", lambda t: t.permute(0, 3, 1, 2))]
        references = {}
        for layer, transform in cams:
            module = dict(eager.named_modules())[layer]
            cam = GradCAM(model=eager, target_layers=[module], reshape_transform=transform)
            eager.zero_grad()
            loss = ClassifierOutputTarget(TARGET)(cam.activations_and_grads(x)[0])
            loss.backward()
            a = cam.activations_and_grads.activations[0].numpy()
            g = cam.activations_and_grads.gradients[0].numpy()
            references[("gradcam", layer)] = torch.from_numpy(cam.get_cam_image(x, module, None, a, g))[0]
            cam.activations_and_grads.release()
        xs = x.clone().requires_grad_(True)
        eager(xs)[0, TARGET].backward()
        references[("saliency", "")] = xs.grad.abs().amax(1, keepdim=True)
        if name.startswith("vit_"):
            _, maps, _ = attention_check.attentions(eager, x)
            R = attention_check.rollout([m.detach() for m in maps], "mean", 0.9)
            references[("attention-rollout", "")] = R[0, 0, 1:].reshape(14, 14)
        for scripted in (False, True):
            form = "scripted" if scripted else "traced"
            path = os.path.join(work, f"{name}.{form}.pt")
            export(model, path, scripted)
            loaded = torch.jit.load(path).double()
            xs = x.clone().requires_grad_(True)
            loaded(xs)[0, TARGET].backward()
            file_references = dict(references)
            file_references[("saliency", "file")] = xs.grad.abs().amax(1, keepdim=True)
            for (technique, layer), want in file_references.items():
                out = os.path.join(work, f"out_{name}_{form}_{technique}_{layer or 'input'}")
                if layer == "file":
                    got = load(run_netlens(args.netlens, technique, path, image, out, []), "saliency")
                    got = got.abs().amax(1, keepdim=True)
                    d = relative(got, want)
                    ok = d <= BOUNDS[technique]
                    failed = failed or not ok
                    print(f"{name:9s} {form:8s} {technique:18s} {'(vs the file in PyTorch)':38s} max |diff| / max |ref| = "
                          f"{d:.2e} {'ok' if ok else 'ABOVE ' + format(BOUNDS[technique], '.0e')}", flush=True)
                    continue
                options = ["--layer", layer] if layer else []
                files = run_netlens(args.netlens, technique, path, image, out, options)
                part = {"gradcam": "gradcam", "saliency": "saliency", "attention-rollout": "attention_rollout"}[technique]
                got = load(files, part)
                if technique == "saliency":  # netlens writes the signed gradient; compare |g| max over channels
                    got = got.abs().amax(1, keepdim=True) if got.dim() == 4 else got
                d = relative(got, want)
                # Against the eager module, saliency is only reported (the file's own check is above).
                ok = d <= BOUNDS[technique] or technique == "saliency"
                failed = failed or not ok
                print(f"{name:9s} {form:8s} {technique:18s} {layer or '-':38s} max |diff| / max |ref| = {d:.2e}"
                      f" {'ok' if d <= BOUNDS[technique] else ('(reported)' if ok else 'ABOVE ' + format(BOUNDS[technique], '.0e'))}",
                      flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
