#!/usr/bin/python3
"""DeepLIFT's rules written out in eager PyTorch, independently of netlens' C++ (custom autograd
functions in place of SqueezeNet 1.0's nn.ReLU and nn.MaxPool2d modules), for the unit tests
DeepLift.FollowsItsRulesOnSqueezeNet and DeepLift.EqualsCaptumsOnSqueezeNet: the rescale rule for
rectifiers, and Captum's max-pooling rule, with what overlapping windows route to a shared
arg-max added up (netlens' default) or un-pooled by max_unpool2d as Captum does (--max-pool
unpool). Input: the float64 standard-normal 1x3x224x224 tensor of a CPU generator seeded 5, zero
baseline, target 281.

    NETLENS_SHARED_MODELS=../shared/models /usr/bin/python3 tools/check_deeplift_rules.py [unpool]

tools/check_captum_deeplift.py imports attribute() with captum_hook_order=True to reproduce what
Captum's hooks compute where a ReLU feeds a max-pool directly (docs/techniques.md).
"""
import sys

import torch
import torch.nn.functional as F

import squeezenet_eager

EPS = 1e-10  # Captum's


def half_difference(t):
    """x - x0 of a batch [x; x0], repeated for both halves."""
    a, b = t.chunk(2)
    return torch.cat([a - b, a - b])


class Rules:
    """The rules' settings and what a max-pool hands the ReLU before it (captum_hook_order)."""

    def __init__(self, unpool, captum_hook_order):
        self.unpool, self.captum_hook_order, self.ordinary = unpool, captum_hook_order, None


class Rescale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, rules):
        ctx.save_for_backward(x)
        ctx.rules = rules
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        dx, dy = half_difference(x), half_difference(x.clamp_min(0))
        # Captum's hook order: a ReLU whose output is a max-pool's input records that tensor's
        # gradient before the max-pool's rule replaces it, so its multiplier scales the ordinary
        # max-pooling gradient (where |dx| < eps it keeps the gradient that reached it).
        scaled = g
        if ctx.rules.ordinary is not None:
            scaled, ctx.rules.ordinary = ctx.rules.ordinary, None
        return torch.where(dx.abs() < EPS, g * (x > 0).double(), scaled * dy / dx), None


class MaxPoolRule(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, ceil_mode, rules):
        ctx.save_for_backward(x)
        ctx.pool = (kernel, stride, 0, 1, ceil_mode)
        ctx.rules = rules
        ctx.after_relu = x.grad_fn is not None and "Rescale" in type(x.grad_fn).__name__
        return F.max_pool2d(x, *ctx.pool)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        out, indices = F.max_pool2d(x, *ctx.pool, True)

        def summed(values):  # what windows route to a shared arg-max adds up
            return torch.zeros_like(x).flatten(2).scatter_add_(2, indices.flatten(2), values.flatten(2)).view_as(x)

        def unpool(values):
            if ctx.rules.unpool:  # Captum's: one window's value survives at a shared arg-max
                return F.max_unpool2d(values, indices, ctx.pool[0], ctx.pool[1], 0, list(x.shape))
            return summed(values)

        y, y0 = out.chunk(2)
        top = torch.max(y, y0)
        routed = unpool(g * torch.cat([top - y0, y - top]))
        a, b = routed.chunk(2)
        dx = half_difference(x)
        ordinary = summed(g)
        if ctx.rules.captum_hook_order and ctx.after_relu:
            ctx.rules.ordinary = ordinary
        return torch.where(dx.abs() < EPS, ordinary, torch.cat([a + b, a + b]) / dx), None, None, None, None


class ReLU(torch.nn.Module):
    def __init__(self, rules):
        super().__init__()
        self.rules = rules

    def forward(self, x):
        return Rescale.apply(x, self.rules)


class MaxPool(torch.nn.Module):
    def __init__(self, pool, rules):
        super().__init__()
        self.pool, self.rules = (pool.kernel_size, pool.stride, pool.ceil_mode), rules

    def forward(self, x):
        return MaxPoolRule.apply(x, *self.pool, self.rules)


def replace_layers(module, rules):
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, ReLU(rules))
        elif isinstance(child, torch.nn.MaxPool2d):
            setattr(module, name, MaxPool(child, rules))
        else:
            replace_layers(child, rules)


def attribute(unpool=False, captum_hook_order=False):
    """DeepLIFT of the test input (zero baseline, target 281) under the rules written out."""
    _, model = squeezenet_eager.load()
    replace_layers(model, Rules(unpool, captum_hook_order))
    x = squeezenet_eager.test_input()
    pairs = torch.cat([x, torch.zeros_like(x)]).requires_grad_(True)
    model(pairs)[:, 281].sum().backward()
    return x * pairs.grad[:1]


if __name__ == "__main__":
    unpool = "unpool" in sys.argv[1:]
    attr = attribute(unpool)
    print("DeepLIFT sum, abs sum, attr[0,1,136,164]:", repr(float(attr.sum())), repr(float(attr.abs().sum())),
          repr(float(attr[0, 1, 136, 164])))
    squeezenet_eager.print_input_map("DeepLIFT" + (" (unpool)" if unpool else ""), attr)
