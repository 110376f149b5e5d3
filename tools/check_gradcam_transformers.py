#!/usr/bin/python3
"""Prints pytorch-grad-cam's own Grad-CAM on the small transformers of tools/export_test_models.py
(torchvision's VisionTransformer, a DeiT-style ViT with two prefix tokens, torchvision's Swin), in
float64, for the unit test Transformers.GradCamEqualsPytorchGradCam.

    PYTORCH_GRAD_CAM=/path/to/pytorch-grad-cam /usr/bin/python3 tools/check_gradcam_transformers.py

pytorch-grad-cam needs a hand-written `reshape_transform` per model (its ViT example's drops the
class token and lays 14 x 14 patches; torchvision's Swin is channels-last already); here each is
written for these models, as its users write them. Its modules import cv2, ttach, matplotlib,
scipy, sklearn and tqdm for post-processing, test-time augmentation and other methods that this
check does not use (Debian's python3 here has none of them): empty stand-ins are put in their
place, the package's __init__ (which imports every method) is skipped, and the raw map is taken
from its `get_cam_image` (before its ReLU, resize and min-max scaling, which netlens' renderer does).
"""
import os
import sys
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_test_models as exports  # noqa: E402

for name in ("cv2", "ttach", "matplotlib", "matplotlib.pyplot", "matplotlib.lines", "scipy", "scipy.ndimage",
             "sklearn", "sklearn.decomposition", "tqdm"):
    stub = types.ModuleType(name)
    stub.__getattr__ = lambda attr: (lambda *args, **kwargs: None)
    sys.modules[name] = stub
# The package without its __init__ (which imports every method, metrics included).
package = types.ModuleType("pytorch_grad_cam")
package.__path__ = [os.path.join(os.environ.get("PYTORCH_GRAD_CAM", "/tmp/pytorch-grad-cam"), "pytorch_grad_cam")]
sys.modules["pytorch_grad_cam"] = package
from pytorch_grad_cam.grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402


def tokens(prefix, h, w):
    def transform(t):  # pytorch-grad-cam's ViT example, with the prefix and grid of this model
        return t[:, prefix:, :].reshape(t.size(0), h, w, t.size(2)).transpose(2, 3).transpose(1, 2)
    return transform


def channels_last(t):
    return t.permute(0, 3, 1, 2)


CASES = [
    ("vit", "encoder.layers.encoder_layer_1.ln_1", tokens(1, 8, 8)),
    ("deit", "encoder.layers.encoder_layer_1.ln_1", tokens(2, 8, 8)),
    ("swin", "features.3.1.norm1", channels_last),
    ("swin", "norm", channels_last),
]
TARGET = 3

for arch, layer, transform in CASES:
    model = exports.build(arch).eval().double()
    module = dict(model.named_modules())[layer]
    cam = GradCAM(model=model, target_layers=[module], reshape_transform=transform)
    x = exports.probe_input()
    model.zero_grad()
    loss = ClassifierOutputTarget(TARGET)(cam.activations_and_grads(x)[0])
    loss.backward()
    a = cam.activations_and_grads.activations[0].numpy()
    g = cam.activations_and_grads.gradients[0].numpy()
    raw = torch.from_numpy(cam.get_cam_image(x, module, None, a, g))[0]
    flat = raw.flatten()
    top = int(flat.abs().argmax())
    print(f'{{"{arch}", "{layer}", {raw.shape[0]}, {raw.shape[1]}, {float(raw.sum())!r}, '
          f'{float(raw.abs().sum())!r}, {top}, {float(flat[top])!r}, {float(flat[0])!r}}},')
    cam.activations_and_grads.release()
