#!/usr/bin/python3
"""Times Lucent's render_vis (Lucid's defaults: 128x128 FFT + decorrelated colour, standard
transforms, Adam 0.05, upsampling to 224) on a torchvision model, for docs/performance.md.

Lucent itself (greentfrapp/lucent) is run from its source, given with --lucent DIR (e.g. an
extracted checkout). Debian has no kornia, which Lucent's transforms call for translate and
rotate; when it is missing this script installs a stand-in with the same three functions
(translate, get_rotation_matrix2d, warp_affine) written with torch's affine_grid/grid_sample,
which is what kornia does inside. IPython (for Lucent's notebook display) is stubbed likewise.

  /usr/bin/python3 tools/bench_lucent.py ../shared/models/squeezenet1_0.pt --lucent /tmp/lucent \
      --arch squeezenet1_0 --layer features_12 --channels 1 --steps 64
"""
import argparse
import math
import sys
import time
import types

import torch
import torch.nn.functional as F


def install_kornia_standin():
    def translate(image, translation):
        n, _, h, w = image.shape
        theta = torch.zeros(n, 2, 3, dtype=image.dtype, device=image.device)
        theta[:, 0, 0] = 1
        theta[:, 1, 1] = 1
        theta[:, 0, 2] = -translation[:, 0] * 2 / w
        theta[:, 1, 2] = -translation[:, 1] * 2 / h
        grid = F.affine_grid(theta, image.shape, align_corners=False)
        return F.grid_sample(image, grid, align_corners=False)

    def get_rotation_matrix2d(center, angle, scale):
        a = angle * math.pi / 180
        cos, sin = torch.cos(a) * scale[:, 0], torch.sin(a) * scale[:, 0]
        m = torch.zeros(center.shape[0], 2, 3)
        m[:, 0, 0], m[:, 0, 1] = cos, sin
        m[:, 1, 0], m[:, 1, 1] = -sin, cos
        m[:, 0, 2] = (1 - cos) * center[:, 0] - sin * center[:, 1]
        m[:, 1, 2] = sin * center[:, 0] + (1 - cos) * center[:, 1]
        return m

    def warp_affine(image, m, dsize):
        n, _, h, w = image.shape
        full = torch.cat([m, torch.tensor([[[0.0, 0.0, 1.0]]]).expand(n, 1, 3)], 1)
        inv = torch.inverse(full)[:, :2]
        # pixel -> normalized coordinates (align_corners=True)
        norm = torch.tensor([[2 / (w - 1), 0, -1], [0, 2 / (h - 1), -1], [0, 0, 1]])
        theta = norm @ torch.cat([inv, torch.tensor([[[0.0, 0.0, 1.0]]]).expand(n, 1, 3)], 1) @ torch.inverse(norm)
        grid = F.affine_grid(theta[:, :2], (n, image.shape[1], dsize[0], dsize[1]), align_corners=True)
        return F.grid_sample(image, grid, align_corners=True)

    kornia = types.ModuleType("kornia")
    kornia.__version__ = "0.6.0"
    kornia.get_rotation_matrix2d = get_rotation_matrix2d
    kornia.warp_affine = warp_affine
    geometry = types.ModuleType("kornia.geometry")
    transform = types.ModuleType("kornia.geometry.transform")
    transform.translate = translate
    geometry.transform = transform
    kornia.geometry = geometry
    sys.modules.update({"kornia": kornia, "kornia.geometry": geometry, "kornia.geometry.transform": transform})


class Preprocess(torch.nn.Module):
    """The shared SqueezeNet's `preprocess`: torchvision-normalized RGB -> Caffe BGR 0..255."""

    def __init__(self, state):
        super().__init__()
        for key in ("mean", "std", "caffe_mean_bgr"):
            self.register_buffer(key, state["preprocess." + key])

    def forward(self, x):
        return torch.flip((x * self.std + self.mean) * 255.0, [1]) - self.caffe_mean_bgr


def eager_model(arch, path):
    """The torchvision architecture with the TorchScript file's weights (Lucent hooks eager
    modules), with the file's `preprocess` module when it has one."""
    import torchvision.models as tvm
    state = torch.jit.load(path).state_dict()
    net = getattr(tvm, arch)()
    if arch.startswith("squeezenet"):
        net.classifier[1].padding = (1, 1)  # the shared file keeps the prototxt's padding
    own = {k: v for k, v in state.items() if not k.startswith("preprocess.")}
    net.load_state_dict(own)
    if len(own) == len(state):
        return net.eval()
    pre = Preprocess(state)
    forward = net.forward
    net.preprocess = pre
    net.forward = lambda x: forward(pre(x))
    return net.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--lucent", required=True, help="folder holding the lucent package")
    ap.add_argument("--arch", default="squeezenet1_0")
    ap.add_argument("--layer", default="features_12", help="Lucent's layer name (dots become _)")
    ap.add_argument("--channels", default="1", help="one channel, or A..B for a batch")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (Lucent puts its picture on cuda when "
                    "one is available, so the model must follow)")
    args = ap.parse_args()
    sys.path.insert(0, args.lucent)
    try:
        import kornia  # noqa: F401
        shim = False
    except ImportError:
        install_kornia_standin()
        shim = True
    try:
        import IPython.display  # noqa: F401
    except ImportError:
        ipython = types.ModuleType("IPython")
        ipython.display = types.ModuleType("IPython.display")
        sys.modules.update({"IPython": ipython, "IPython.display": ipython.display})
    from lucent.optvis import objectives, param, render

    torch.set_num_threads(args.threads)
    model = eager_model(args.arch, args.model).to(args.device)
    if ".." in args.channels:
        first, last = (int(v) for v in args.channels.split(".."))
        channels = list(range(first, last + 1))
    else:
        channels = [int(args.channels)]
    batch = len(channels)
    objective = sum(objectives.channel(args.layer, c, batch=i) for i, c in enumerate(channels))
    param_f = lambda: param.image(128, batch=batch)  # noqa: E731
    render.render_vis(model, objective, param_f, thresholds=(2,), show_image=False, progress=False)  # warm-up
    start = time.perf_counter()
    render.render_vis(model, objective, param_f, thresholds=(args.steps,), show_image=False, progress=False)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(f"lucent {args.arch} {args.layer}:{args.channels} batch {batch}: {args.steps} steps in "
          f"{seconds:.2f} s = {args.steps / seconds:.2f} steps/s ({args.device}, {args.threads} threads, torch "
          f"{torch.__version__}{', kornia stand-in' if shim else ''})")


if __name__ == "__main__":
    main()
