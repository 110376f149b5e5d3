"""The shared SqueezeNet 1.0 as an eager torchvision module, for the scripts that compare netlens
with Python on it (tools/check_captum_layer_methods.py, tools/check_deeplift_rules.py): Captum's
hooks and custom autograd functions need nn.Module layers, so the TorchScript file's weights go
into torchvision's SqueezeNet 1.0 behind the same preprocessing module (the file's `preprocess`).
"""
import os

import torch
import torchvision


def load(shared=None):
    """(scripted, eager) SqueezeNet 1.0 in float64, eval mode, with the same weights."""
    shared = shared or os.environ.get("NETLENS_SHARED_MODELS", "../shared/models")
    scripted = torch.jit.load(os.path.join(shared, "squeezenet1_0.pt")).double().eval()

    class Eager(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.preprocess = scripted.preprocess
            net = torchvision.models.squeezenet1_0()
            state = {k: v for k, v in scripted.state_dict().items() if not k.startswith("preprocess.")}
            net.load_state_dict(state)
            net.classifier[1].padding = (1, 1)  # this Caffe-converted SqueezeNet pads its final conv
            self.features, self.classifier = net.features, net.classifier

        def forward(self, x):
            return torch.flatten(self.classifier(self.features(self.preprocess(x))), 1)

    return scripted, Eager().double().eval()


def test_input():
    """The float64 standard-normal 1x3x224x224 input of a CPU generator seeded 5 (the C++ tests
    draw the same one)."""
    return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def print_input_map(name, attr, extra=""):
    """The figures the C++ tests compare with for a map over the 1x3x224x224 input: its sum,
    absolute sum and three largest elements (by magnitude) with their positions."""
    print(name + " sum", repr(float(attr.sum())) + extra)
    print("abs_sum", repr(float(attr.abs().sum())))
    flat = attr.flatten()
    for i in flat.abs().topk(3).indices.tolist():
        c, r = divmod(i, 224 * 224)
        print("input", c, r // 224, r % 224, repr(float(flat[i])))
