#!/usr/bin/python3
"""Prints attention rollout and Chefer et al.'s transformer attribution computed in plain PyTorch
from the attentions torchvision's nn.MultiheadAttention returns with need_weights=True, on the
small ViT and DeiT-style ViT of tools/export_test_models.py (float64, target 3), for the unit
test Transformers.AttentionMapsEqualPlainPyTorch.

    /usr/bin/python3 tools/check_attention_transformers.py

Rollout (Abnar & Zuidema 2020, jacobgil/vit-explain's form with rows normalized to sum 1): per
block the heads fused, the lowest `discard` fraction of the fused entries set to 0 (flat index 0
kept), a = (fused + I) / 2, a /= a.sum(-1), R = a @ R from R = I. Chefer et al. 2021: R += mean_h
(dA * A).clamp(min=0) @ R. Both maps are R[0, 0, prefix:] on the 8 x 8 grid.

Also, for attention-heads (Transformers.AttentionHeadsEqualPlainPyTorch): the last block's
attention from the class token and from patch 3,4 to the patches, per head (B x H x 8 x 8), with
head 1's entropy over its whole row (nats) and, from the patch, its attention-weighted distance
to the patches in pixels (8-pixel patches).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_test_models as exports  # noqa: E402

TARGET = 3


def attentions(model, x):
    """The logits, the attentions nn.MultiheadAttention returns with need_weights=True (B x H x
    T x T, per block) and, for their gradients, the softmax outputs its forward goes on with
    (B*H x T x T, read by wrapping torch.nn.functional.softmax)."""
    maps, used = [], []
    for block in model.encoder.layers:
        attention = block.self_attention
        forward = attention.forward

        def patched(query, key, value, need_weights=False, forward=forward):
            out, weights = forward(query, key, value, need_weights=True, average_attn_weights=False)
            maps.append(weights)
            return out, weights
        attention.forward = patched
    softmax = torch.nn.functional.softmax

    def recording(*args, **kwargs):
        y = softmax(*args, **kwargs)
        if y.dim() == 3 and y.shape[-1] == y.shape[-2]:
            y.retain_grad()
            used.append(y)
        return y
    torch.nn.functional.softmax = recording
    try:
        logits = model(x)
    finally:
        torch.nn.functional.softmax = softmax
    assert len(used) == len(maps)
    for m, u in zip(maps, used):
        assert float((m - u.view(m.shape)).abs().max()) < 1e-12
    return logits, maps, used


def rollout(maps, fusion, discard):
    T = maps[0].shape[-1]
    R = torch.eye(T, dtype=torch.float64)[None]
    for A in maps:
        fused = {"mean": A.mean(1), "max": A.max(1)[0], "min": A.min(1)[0]}[fusion].detach().clone()
        flat = fused.view(fused.size(0), -1)
        k = int(flat.size(-1) * discard)
        if k > 0:
            _, idx = flat.topk(k, -1, False)
            idx = idx[idx != 0]
            flat[0, idx] = 0
        a = (fused + torch.eye(T, dtype=torch.float64)) / 2
        a = a / a.sum(dim=-1, keepdim=True)
        R = a @ R
    return R


def chefer(maps, used):
    T = maps[0].shape[-1]
    R = torch.eye(T, dtype=torch.float64)[None]
    for A, u in zip(maps, used):
        cam = (u.grad.view(A.shape) * A.detach()).clamp(min=0).mean(1)
        R = R + cam @ R
    return R


def show(name, arch, R, prefix, m=None):
    m = R[0, 0, prefix:] if m is None else m.flatten()
    top = int(m.abs().argmax())
    print(f'{{"{name}", "{arch}", {float(m.sum())!r}, {float(m.abs().sum())!r}, {top}, {float(m[top])!r}, '
          f'{float(m[0])!r}}},')


def main():
    for arch, prefix in (("vit", 1), ("deit", 2)):
        model = exports.build(arch).eval().double()
        x = exports.probe_input()
        logits, maps, used = attentions(model, x)
        logits[0, TARGET].backward()
        show("rollout-mean-0.9", arch, rollout(maps, "mean", 0.9), prefix)
        show("rollout-max-0", arch, rollout(maps, "max", 0.0), prefix)
        show("chefer", arch, chefer(maps, used), prefix)
        A = maps[-1].detach()  # B x H x T x T
        for query, name in ((0, "heads-cls"), (prefix + 3 * 8 + 4, "heads-3,4")):
            rows = A[:, :, query, prefix:]
            show(name, arch, None, prefix, rows)
            p = A[0, 1, query]
            entropy = float(-(p * p.log()).sum())
            extra = f"entropy {entropy!r}"
            if query >= prefix:
                ii, jj = torch.meshgrid(torch.arange(8.0, dtype=torch.float64), torch.arange(8.0, dtype=torch.float64),
                                        indexing="ij")
                d = (((ii - 3) * 8) ** 2 + ((jj - 4) * 8) ** 2).sqrt().flatten()
                w = A[0, 1, query, prefix:]
                extra += f", distance {float((w * d).sum() / w.sum())!r}"
            print(f"  // {name} {arch} head 1: {extra}")


if __name__ == "__main__":
    main()
