#!/usr/bin/python3
"""DeepLIFT's rules written out in eager PyTorch, independently of netlens' C++ (custom autograd
functions in place of SqueezeNet 1.0's nn.ReLU and nn.MaxPool2d modules), for the unit test
DeepLift.FollowsItsRulesOnSqueezeNet: the rescale rule for rectifiers, and Captum's max-pooling
rule with what overlapping windows route to a shared arg-max added up. Input: the float64
standard-normal 1x3x224x224 tensor of a CPU generator seeded 5, zero baseline, target 281.

    NETLENS_SHARED_MODELS=../shared/models /usr/bin/python3 tools/check_deeplift_rules.py
"""
import torch
import torch.nn.functional as F

import squeezenet_eager

EPS = 1e-10  # Captum's


def half_difference(t):
    """x - x0 of a batch [x; x0], repeated for both halves."""
    a, b = t.chunk(2)
    return torch.cat([a - b, a - b])


class Rescale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        dx, dy = half_difference(x), half_difference(x.clamp_min(0))
        return torch.where(dx.abs() < EPS, g * (x > 0).double(), g * dy / dx)


class MaxPoolRule(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, ceil_mode):
        ctx.save_for_backward(x)
        ctx.pool = (kernel, stride, 0, 1, ceil_mode)
        return F.max_pool2d(x, *ctx.pool)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        out, indices = F.max_pool2d(x, *ctx.pool, True)

        def unpool(values):  # what windows route to a shared arg-max adds up
            return torch.zeros_like(x).flatten(2).scatter_add_(2, indices.flatten(2), values.flatten(2)).view_as(x)

        y, y0 = out.chunk(2)
        top = torch.max(y, y0)
        routed = unpool(g * torch.cat([top - y0, y - top]))
        a, b = routed.chunk(2)
        dx = half_difference(x)
        return torch.where(dx.abs() < EPS, unpool(g), torch.cat([a + b, a + b]) / dx), None, None, None


class ReLU(torch.nn.Module):
    def forward(self, x):
        return Rescale.apply(x)


class MaxPool(torch.nn.Module):
    def __init__(self, pool):
        super().__init__()
        self.pool = (pool.kernel_size, pool.stride, pool.ceil_mode)

    def forward(self, x):
        return MaxPoolRule.apply(x, *self.pool)


def replace_layers(module):
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, ReLU())
        elif isinstance(child, torch.nn.MaxPool2d):
            setattr(module, name, MaxPool(child))
        else:
            replace_layers(child)


_, model = squeezenet_eager.load()
replace_layers(model)
x = squeezenet_eager.test_input()
pairs = torch.cat([x, torch.zeros_like(x)]).requires_grad_(True)
model(pairs)[:, 281].sum().backward()
attr = x * pairs.grad[:1]
print("DeepLIFT sum, abs sum, attr[0,1,136,164]:", repr(float(attr.sum())), repr(float(attr.abs().sum())),
      repr(float(attr[0, 1, 136, 164])))
