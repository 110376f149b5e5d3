# Prints Captum's LayerConductance, InternalInfluence and NeuronConductance at SqueezeNet 1.0's
# features.12, and its DeepLift, for the unit tests LayerConductance/InternalInfluence/
# NeuronConductance/DeepLift.EqualsCaptumsOnSqueezeNet
# (run from the repository root with Captum's source at CAPTUM=/path/to/captum and the shared
# models at NETLENS_SHARED_MODELS): /usr/bin/python3 tools/check_captum_layer_methods.py
# Captum hooks nn.Module layers: tools/squeezenet_eager.py puts the TorchScript model's weights into
# torchvision's eager SqueezeNet 1.0 behind the same preprocessing module.
import os
import sys

import torch

import squeezenet_eager

sys.path.insert(0, os.environ.get("CAPTUM", "/tmp/captum"))
from captum.attr import InternalInfluence, LayerConductance, NeuronConductance  # noqa: E402

scripted, model = squeezenet_eager.load()
x = squeezenet_eager.test_input()
gap = float((model(x) - scripted(x)).abs().max())
assert gap < 1e-9, gap
target = 281
for name, method in (("LayerConductance", LayerConductance), ("InternalInfluence", InternalInfluence)):
    cond = method(model, model.features[12]).attribute(x, target=target, n_steps=16)
    print(name, "shape", list(cond.shape))
    print("sum", repr(float(cond.sum())))
    print("abs_sum", repr(float(cond.abs().sum())))
    flat = cond.flatten().abs()
    for i in flat.topk(3).indices.tolist():
        c, r = divmod(i, 13 * 13)
        print("unit", c, r // 13, r % 13, repr(float(cond.flatten()[i])))
    sums = cond.sum((2, 3))[0]
    print("top3_channel_sums", [(c, repr(float(sums[c]))) for c in sums.abs().topk(3).indices.tolist()])

# NeuronConductance of the unit (445, 1, 12), Captum's default method (riemann_trapezoid), 16 steps.
attr = NeuronConductance(model, model.features[12]).attribute(x, neuron_selector=(445, 1, 12), target=target, n_steps=16)
squeezenet_eager.print_input_map("NeuronConductance", attr)

# DeepLift (rescale rule, Captum's max-pool rule) on the eager copy (its nn.ReLU and nn.MaxPool2d
# modules are what Captum hooks), zero baseline.
from captum.attr import DeepLift  # noqa: E402

attr, delta = DeepLift(model).attribute(x, target=target, baselines=0.0, return_convergence_delta=True)
squeezenet_eager.print_input_map("DeepLift", attr, " convergence delta " + repr(float(delta)))
