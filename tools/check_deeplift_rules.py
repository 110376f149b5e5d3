#!/usr/bin/python3
"""DeepLIFT's rules written out in eager PyTorch, independently of netlens' C++ (custom autograd
functions in place of SqueezeNet 1.0's nn.ReLU and nn.MaxPool2d modules), for the unit test
DeepLift.FollowsItsRulesOnSqueezeNet: the rescale rule for rectifiers, and Captum's max-pooling
rule with what overlapping windows route to a shared arg-max added up. Input: the float64
standard-normal 1x3x224x224 tensor of a CPU generator seeded 5, zero baseline, target 281.

    NETLENS_SHARED_MODELS=../shared/models /usr/bin/python3 tools/check_deeplift_rules.py
"""
import os

import torch
import torch.nn.functional as F
import torchvision
shared = os.environ.get("NETLENS_SHARED_MODELS", "../shared/models")
scripted = torch.jit.load(os.path.join(shared, "squeezenet1_0.pt")).double().eval()
EPS = 1e-10
def halfdiff(t):
    a, b = t.chunk(2); d = a - b; return torch.cat([d, d])
class R(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x); return x.clamp_min(0)
    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        ordinary = g * (x > 0).double()
        dx = halfdiff(x); dy = halfdiff(x.clamp_min(0))
        return torch.where(dx.abs() < EPS, ordinary, g * dy / dx)
class MP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k, s, ceil):
        ctx.save_for_backward(x); ctx.k, ctx.s, ctx.ceil = k, s, ceil
        return F.max_pool2d(x, k, s, 0, 1, ceil)
    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        out, idx = F.max_pool2d(x, ctx.k, ctx.s, 0, 1, ctx.ceil, True)
        o1, o0 = out.chunk(2)
        xm = torch.max(o1, o0)
        do = torch.cat([xm - o0, o1 - xm])
        un = torch.zeros_like(x).flatten(2).scatter_add_(2, idx.flatten(2), (g * do).flatten(2)).view_as(x)
        u1, u0 = un.chunk(2); u = u1 + u0; u = torch.cat([u, u])
        ordinary = torch.zeros_like(x).flatten(2).scatter_add_(2, idx.flatten(2), g.flatten(2)).view_as(x)
        dx = halfdiff(x)
        return torch.where(dx.abs() < EPS, ordinary, u / dx), None, None, None
class Relu(torch.nn.Module):
    def forward(self, x): return R.apply(x)
class Pool(torch.nn.Module):
    def __init__(self, m): super().__init__(); self.k, self.s, self.c = m.kernel_size, m.stride, m.ceil_mode
    def forward(self, x): return MP.apply(x, self.k, self.s, self.c)
def swap(mod):
    for name, ch in mod.named_children():
        if isinstance(ch, torch.nn.ReLU): setattr(mod, name, Relu())
        elif isinstance(ch, torch.nn.MaxPool2d): setattr(mod, name, Pool(ch))
        else: swap(ch)
class Eager(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.preprocess = scripted.preprocess
        net = torchvision.models.squeezenet1_0()
        state = {k: v for k, v in scripted.state_dict().items() if not k.startswith("preprocess.")}
        net.load_state_dict(state)
        net.classifier[1].padding = (1, 1)
        self.features, self.classifier = net.features, net.classifier
    def forward(self, x):
        return torch.flatten(self.classifier(self.features(self.preprocess(x))), 1)
model = Eager().double().eval(); swap(model)
x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
xb = torch.cat([x, torch.zeros_like(x)]).requires_grad_(True)
out = model(xb)
out[:, 281].sum().backward()
a = x * xb.grad[:1]
print("DeepLIFT sum, abs sum, attr[0,1,136,164]:", float(a.sum()), float(a.abs().sum()), float(a[0,1,136,164]))
