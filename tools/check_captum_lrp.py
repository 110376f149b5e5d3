# Prints Captum's LRP (EpsilonRule everywhere, its default; epsilon 1e-9) on SqueezeNet 1.0 for the
# unit test Lrp.EqualsCaptumsOnSqueezeNet (run from the repository root with Captum's source at
# CAPTUM=/path/to/captum and the shared models at NETLENS_SHARED_MODELS):
#   /usr/bin/python3 tools/check_captum_lrp.py
# Captum's LRP needs a rule for every leaf module, and the file's preprocessing (x * std + mean,
# x 255, RGB -> BGR, minus the Caffe mean) is a TorchScript module it has none for: Captum runs on
# features + classifier from the preprocessed input p. netlens passes relevance through that
# elementwise preprocessing unchanged, so its map at image channel c is Captum's at p's channel
# 2 - c (the flip), which is what this prints.
import os
import sys

import torch

import squeezenet_eager

sys.path.insert(0, os.environ.get("CAPTUM", "/tmp/captum"))
from captum.attr import LRP  # noqa: E402

scripted, model = squeezenet_eager.load()
x = squeezenet_eager.test_input()


class Inner(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features, self.classifier = model.features, model.classifier

    def forward(self, p):
        return torch.flatten(self.classifier(self.features(p)), 1)


inner = Inner().double().eval()
with torch.no_grad():
    p = model.preprocess(x)
target = 281
attr, delta = LRP(inner).attribute(p.clone().requires_grad_(True), target=target, return_convergence_delta=True)
attr = attr.detach().flip(1)  # back to the image's channel order
print("logit", repr(float(inner(p)[0, target])), "convergence delta", repr(float(delta)))
squeezenet_eager.print_input_map("LRP", attr)

if "--time" in sys.argv:
    # Captum's LRP against netlens bench --only lrp: float32, the threads netlens uses, best of 6.
    import time

    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    inner32 = Inner().float().eval()
    for q in inner32.parameters():
        q.requires_grad_(False)
    p32 = p.float()
    best = float("inf")
    for _ in range(6):
        start = time.perf_counter()
        LRP(inner32).attribute(p32.clone().requires_grad_(True), target=target)
        best = min(best, time.perf_counter() - start)
    print(f"Captum LRP, SqueezeNet 1.0 float32, {torch.get_num_threads()} threads: {best * 1000:.1f} ms")
