#!/usr/bin/python3
"""Times Captum on the same TorchScript model, image and settings that `netlens bench` uses, so
that docs/performance.md can put the two side by side (same machine, same LibTorch kernels).

    PYTHONPATH=/path/to/captum /usr/bin/python3 tools/bench_captum.py resnet18.pt cat.png

Captum is not a dependency of netlens and is not installed by tools/setup.sh: bring its source
(any release that supports torch 1.13; 0.8.0 imports matplotlib and tqdm, Debian
python3-matplotlib and python3-tqdm) and point PYTHONPATH at it; kernel-shap and lime need
scikit-learn (Debian python3-sklearn). The shared SqueezeNet (`--arch squeezenet1_0`), which
carries its own preprocessing, is rebuilt by tools/squeezenet_eager.py. Preprocessing mirrors
netlens' default (shorter side to 256, centre crop 224, ImageNet mean/std). Prints one row per
technique: median milliseconds of the attribution call over --repeat runs (after one warm-up).
"""
import argparse
import os
import statistics
import time

import numpy as np
import torch
from PIL import Image


def load_image(path, size=224, crop_pct=0.875, normalize=True):
    img = Image.open(path).convert("RGB")
    short = int(size / crop_pct)
    w, h = img.size
    if w <= h:
        img = img.resize((short, int(h * short / w)), Image.BILINEAR)
    else:
        img = img.resize((int(w * short / h), short), Image.BILINEAR)
    w, h = img.size
    left, top = round((w - size) / 2), round((h - size) / 2)
    img = img.crop((left, top, left + size, top + size))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    if not normalize:
        return x.unsqueeze(0)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return ((x - mean) / std).unsqueeze(0)


def timed(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("image")
    ap.add_argument("--arch", default="resnet18",
                    help="torchvision architecture of the model (Captum's hooks need an eager module: "
                         "it is rebuilt and given the TorchScript file's weights)")
    ap.add_argument("--layer", default="layer4", help="module path for LayerGradCam")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated subset")
    args = ap.parse_args()

    import captum
    from captum.attr import (DeepLift, FeatureAblation, IntegratedGradients, KernelShap, LayerGradCam, Lime, NoiseTunnel,
                             Occlusion, Saliency)

    torch.set_num_threads(args.threads)
    import torchvision.models as tvm
    scripted = torch.jit.load(args.model)
    preprocessed = any(k.startswith("preprocess.") for k in scripted.state_dict())
    if preprocessed and args.arch == "squeezenet1_0":
        # The shared SqueezeNet carries its preprocessing: the eager copy keeps it, and the
        # image goes in as netlens hands it to that model (RGB in [0, 1]).
        import squeezenet_eager
        model = squeezenet_eager.load(os.path.dirname(os.path.abspath(args.model)))[1].float()
    else:
        model = getattr(tvm, args.arch)()
        model.load_state_dict(scripted.state_dict())
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = load_image(args.image, normalize=not preprocessed)
    with torch.no_grad():
        target = int(model(x).argmax(1))

    def layer():
        module = model
        for part in args.layer.split("."):
            module = getattr(module, part)
        return module

    # The 49 tiles of `netlens ... --segmentation grid --segments 49` as Captum's feature mask.
    side = int(np.ceil(np.sqrt(x.shape[2] * x.shape[3] / 49)))
    cols = (x.shape[3] + side - 1) // side
    mask = ((torch.arange(x.shape[2]) // side).view(-1, 1) * cols + (torch.arange(x.shape[3]) // side).view(1, -1))
    mask = mask.view(1, 1, x.shape[2], x.shape[3])
    rows = {
        "saliency": ("", lambda: Saliency(model).attribute(x, target=target)),
        "gradcam": (args.layer, lambda: LayerGradCam(model, layer()).attribute(x, target=target)),
        "integrated-gradients": ("50 steps, batch 16", lambda: IntegratedGradients(model).attribute(
            x, target=target, n_steps=50, internal_batch_size=16, method="gausslegendre")),
        "smoothgrad": ("50 samples, batch 16", lambda: NoiseTunnel(Saliency(model)).attribute(
            x, target=target, nt_type="smoothgrad", nt_samples=50, nt_samples_batch_size=16,
            stdevs=0.15 * float(x.max() - x.min()))),
        "occlusion": ("window 15, stride 8, batch 32", lambda: Occlusion(model).attribute(
            x, target=target, sliding_window_shapes=(3, 15, 15), strides=(3, 8, 8),
            perturbations_per_eval=32)),
        "deeplift": ("zero baseline", lambda: DeepLift(model).attribute(x, target=target, baselines=0.0)),
        "feature-ablation": ("49 grid tiles, batch 32", lambda: FeatureAblation(model).attribute(
            x, target=target, feature_mask=mask, perturbations_per_eval=32)),
        "kernel-shap": ("49 grid tiles, 256 samples, batch 32", lambda: KernelShap(model).attribute(
            x, target=target, feature_mask=mask, n_samples=256, perturbations_per_eval=32)),
        "lime": ("49 grid tiles, 256 samples, batch 32", lambda: Lime(model).attribute(
            x, target=target, feature_mask=mask, n_samples=256, perturbations_per_eval=32)),
    }
    only = [s for s in args.only.split(",") if s]
    print(f"captum {captum.__version__}, torch {torch.__version__}, {args.threads} threads")
    print("| technique | options | Captum ms |")
    print("|---|---|---|")
    for name, (options, fn) in rows.items():
        if only and name not in only:
            continue
        print(f"| {name} | {options} | {timed(fn, args.repeat):.1f} |", flush=True)


if __name__ == "__main__":
    main()
