#!/usr/bin/python3
"""Captum's DeepLift on SqueezeNet 1.0 against its own rules written out (tools/check_deeplift_rules.py),
for the unit test DeepLift.EqualsCaptumsOnSqueezeNet and docs/techniques.md (run from the
repository root with Captum's source at CAPTUM=/path/to/captum and the shared models at
NETLENS_SHARED_MODELS):

    /usr/bin/python3 tools/check_captum_deeplift.py

Captum attaches a module's backward rule as tensor hooks: one on the module's output records the
gradient arriving there, one on its input replaces the input's gradient by the rule. Where a ReLU
feeds a max-pool directly (SqueezeNet's features.1 -> features.2), both hooks sit on the same
tensor and run in the order they were registered: the ReLU records the gradient before the
max-pool's rule replaces it, so the ReLU's multiplier scales the ordinary max-pooling gradient and
the max-pool's rule is lost. This prints, for the test input (float64, zero baseline, target 281):

1. Captum as it is, and its largest difference from the rules written out with that hook order
   (0 when the explanation is complete);
2. Captum with a module between each such ReLU and its max-pool that copies the tensor (so each
   hook has a tensor of its own), and its largest difference from the rules written out with
   Captum's un-pooling (max_unpool2d): the figures netlens' `--max-pool unpool` must equal.
"""
import os
import sys

import torch

import check_deeplift_rules
import squeezenet_eager

sys.path.insert(0, os.environ.get("CAPTUM", "/tmp/captum"))
from captum.attr import DeepLift  # noqa: E402


class Copy(torch.nn.Module):
    """Gives the max-pool an input tensor of its own, so the ReLU's hooks and its own do not meet."""

    def forward(self, x):
        return x.clone()


def captum(separate):
    _, model = squeezenet_eager.load()
    if separate:
        layers = list(model.features.children())
        separated = []
        for i, layer in enumerate(layers):
            separated.append(layer)
            if isinstance(layer, torch.nn.ReLU) and i + 1 < len(layers) and isinstance(layers[i + 1], torch.nn.MaxPool2d):
                separated.append(Copy())
        model.features = torch.nn.Sequential(*separated)
    x = squeezenet_eager.test_input()
    attr, delta = DeepLift(model).attribute(x, target=281, baselines=0.0, return_convergence_delta=True)
    return attr.detach(), float(delta)


for separate, rules, label in [
    (False, dict(unpool=True, captum_hook_order=True), "Captum DeepLift as it is"),
    (True, dict(unpool=True, captum_hook_order=False), "Captum DeepLift, hooks separated"),
]:
    attr, delta = captum(separate)
    written = check_deeplift_rules.attribute(**rules)
    squeezenet_eager.print_input_map(label, attr, " convergence delta " + repr(delta))
    print("largest difference from the rules written out", rules, repr(float((attr - written).abs().max())))
