#!/usr/bin/python3
"""Images per second over a folder (issue 37): netlens against Captum and pytorch-grad-cam, side by
side in one run, each side a whole process doing the same work per image: read the PNG, resize
the shorter side to 256 and centre-crop 224, normalize, compute the map for the image's top class,
write a heat-map PNG and the raw .npy.

    PYTHONPATH=/path/to/captum PYTORCH_GRAD_CAM=/path/to/pytorch-grad-cam \\
        /usr/bin/python3 tools/bench_throughput.py [--netlens build/netlens] [--work DIR] [--images 64]

Needs Debian's python3-pil, python3-opencv, python3-matplotlib and python3-tqdm (Captum imports
the last two), Captum's source on PYTHONPATH and pytorch-grad-cam's at PYTORCH_GRAD_CAM (its
package __init__, which imports every method, is skipped; ttach, scipy and sklearn, which
GradCAM does not use, get empty stand-ins). The model is torchvision's ResNet-18 with random
weights (seeded), exported traced for netlens and used eager by the peers; the photos are 64
256 x 256 crops and flips of the shared test photos. The peers run in batches of 16 (their users'
usual form: one forward for the predictions, then the attribution; pytorch-grad-cam takes the top
class from its own forward); netlens runs `netlens gradcam|saliency --image DIR` with its
defaults (batched passes of up to 16 images, prediction from the technique's own forward).
Prints one row per (tool, technique): seconds for the whole process and images per second,
median of --repeat runs.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

PEER = r'''
import glob, os, sys, time, types
import numpy as np, torch, cv2
import torchvision.models as tvm
from PIL import Image
tool, technique, images, out, weights = sys.argv[1:6]
torch.set_num_threads(os.cpu_count() or 1)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
model = tvm.resnet18()
model.load_state_dict(torch.load(weights))
model.eval()
def load(path):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    s = 256 / min(w, h)
    img = img.resize((max(256, round(w * s)), max(256, round(h * s))), Image.BILINEAR)
    w, h = img.size
    l, t = (w - 224) // 2, (h - 224) // 2
    img = img.crop((l, t, l + 224, t + 224))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - MEAN) / STD
def write(name, m):
    np.save(os.path.join(out, name + ".npy"), m)
    m = m - m.min()
    m = m / (m.max() + 1e-12)
    cv2.imwrite(os.path.join(out, name + ".png"), cv2.applyColorMap(np.uint8(255 * m), cv2.COLORMAP_JET))
paths = sorted(glob.glob(os.path.join(images, "*.png")))
if tool == "captum":
    from captum.attr import LayerAttribution, LayerGradCam, Saliency
    method = LayerGradCam(model, model.layer4) if technique == "gradcam" else Saliency(model)
else:
    for name in ("ttach", "scipy", "scipy.ndimage", "sklearn", "sklearn.decomposition"):
        stub = types.ModuleType(name)
        stub.__getattr__ = lambda attr: (lambda *a, **k: None)
        sys.modules.setdefault(name, stub)
    package = types.ModuleType("pytorch_grad_cam")
    package.__path__ = [os.path.join(os.environ["PYTORCH_GRAD_CAM"], "pytorch_grad_cam")]
    sys.modules["pytorch_grad_cam"] = package
    from pytorch_grad_cam.grad_cam import GradCAM
    cam = GradCAM(model=model, target_layers=[model.layer4[-1]])
for start in range(0, len(paths), 16):
    chunk = paths[start:start + 16]
    x = torch.stack([load(p) for p in chunk])
    if tool == "captum":
        with torch.no_grad():
            targets = model(x).argmax(1)
        if technique == "gradcam":
            maps = LayerAttribution.interpolate(method.attribute(x, target=targets), (224, 224), "bilinear")
            maps = maps.relu()[:, 0].detach().numpy()
        else:
            maps = method.attribute(x, target=targets).amax(1).detach().numpy()
    else:
        maps = cam(input_tensor=x, targets=None)
    for p, m in zip(chunk, maps):
        write(os.path.splitext(os.path.basename(p))[0], m)
'''


def photos(work, count):
    """`count` 256 x 256 PNGs: crops at several scales and flips of the shared photos."""
    from PIL import Image
    shared = os.environ.get("NETLENS_SHARED_MODELS", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "models"))
    sources = sorted(glob.glob(os.path.join(shared, "images", "*.png")) + glob.glob(os.path.join(shared, "images", "*.jpg")))
    folder = os.path.join(work, "photos")
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        img = Image.open(sources[i % len(sources)]).convert("RGB")
        w, h = img.size
        scale = (0.55, 0.75, 1.0)[(i // len(sources)) % 3]
        side = int(min(w, h) * scale)
        left = (w - side) * ((i * 7) % 5) // 4
        top = (h - side) * ((i * 3) % 4) // 3
        img = img.crop((left, top, left + side, top + side)).resize((256, 256), Image.BILINEAR)
        if (i // len(sources)) % 2:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        img.save(os.path.join(folder, f"photo{i:03d}.png"))
    return folder


def model_files(work):
    import torch
    import torchvision.models as tvm
    torch.manual_seed(0)
    model = tvm.resnet18().eval()
    weights = os.path.join(work, "resnet18.weights")
    torch.save(model.state_dict(), weights)
    path = os.path.join(work, "resnet18.pt")
    meta = {"name": "resnet18", "input_size": [224, 224], "channels": 3, "channel_order": "rgb", "mean": MEAN,
            "std": STD, "crop_pct": 0.875}
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 3, 224, 224)), path,
                   _extra_files={"netlens.json": json.dumps(meta)})
    return path, weights


def timed(cmd, out, env=None):
    if os.path.exists(out):
        subprocess.run(["rm", "-rf", out], check=True)
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--netlens", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "netlens"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--techniques", default="gradcam,saliency")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="netlens_throughput_")
    os.makedirs(work, exist_ok=True)
    folder = photos(work, args.images)
    model, weights = model_files(work)
    peer = os.path.join(work, "peer.py")
    with open(peer, "w") as f:
        f.write(PEER)
    rows = []
    for technique in args.techniques.split(","):
        runs = {"netlens": [args.netlens, technique, "--model", model, "--image", folder, "--log-level", "warn"] +
                (["--layer", "layer4"] if technique == "gradcam" else []),
                "captum": [sys.executable, peer, "captum", technique, folder, None, weights]}
        if technique == "gradcam":
            runs["pytorch-grad-cam"] = [sys.executable, peer, "pytorch-grad-cam", technique, folder, None, weights]
        times = {tool: [] for tool in runs}
        for _ in range(args.repeat):  # interleaved, so that a slow moment of the machine hits every tool
            for tool, cmd in runs.items():
                out = os.path.join(work, f"out_{tool}_{technique}")
                cmd = [out if c is None else c for c in cmd]
                if tool == "netlens":
                    cmd = cmd + ["--out", out]
                times[tool].append(timed(cmd, out))
        base = statistics.median(times["captum"])
        for tool, values in times.items():
            s = statistics.median(values)
            rows.append((technique, tool, s, args.images / s, base / s))
    print(f"{'technique':10s} {'tool':18s} {'seconds':>8s} {'images/s':>9s} {'vs Captum':>9s}")
    for technique, tool, s, ips, ratio in rows:
        print(f"{technique:10s} {tool:18s} {s:8.2f} {ips:9.1f} {ratio:8.2f}x")


if __name__ == "__main__":
    main()
