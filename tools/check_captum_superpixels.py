#!/usr/bin/python3
"""Captum's FeatureAblation, KernelShap and Lime on SqueezeNet 1.0 with the mask given as data,
for the unit tests FeatureAblation.EqualsCaptumsOnSqueezeNet and
KernelShapAndLime.FitCaptumsSamplesAsCaptumDoes (tests/data/captum_superpixels_squeezenet.json).

    PYTHONPATH=/path/to/captum /usr/bin/python3 tools/check_captum_superpixels.py [OUT.json]

Input: the float64 standard-normal 1x3x224x224 tensor of a CPU generator seeded 5 (the tests draw
the same one); mask: 7 x 7 tiles of 32 pixels, labels row-major, which is what netlens'
`--segmentation grid --segments 49` makes on 224 x 224; baseline 0; target 281.
FeatureAblation is deterministic: the file holds its 49 values. KernelShap and Lime sample from
the global torch generator, so the file holds what each of them fitted (seed 0, 100 samples):
the on/off vectors, the model's outputs, the sample weights, the coefficients Captum's
scikit-learn surrogate found (on float32 copies of the data, as Captum passes them) and those of
the same fit in float64; the test evaluates the same vectors through netlens, compares
outputs and weights, and fits netlens' surrogate to them. Full runs of both (1000 samples, two
seeds) are added with FULL=1, for docs/techniques.md. Captum needs scikit-learn (Debian python3-sklearn)
and tqdm, and imports matplotlib, which these methods do not use.
"""
import json
import os
import sys
import time

import torch
from sklearn.linear_model import Lasso, LinearRegression

from captum._utils.models.linear_model import SkLearnLasso, SkLearnLinearRegression
from captum.attr import FeatureAblation, KernelShap, Lime

shared = os.environ.get("NETLENS_SHARED_MODELS", "../shared/models")
model = torch.jit.load(os.path.join(shared, "squeezenet1_0.pt")).double().eval()
torch.set_num_threads(2)
x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
rows = torch.arange(224) // 32
mask = (rows.view(-1, 1) * 7 + rows.view(1, -1)).view(1, 1, 224, 224)
target = 281


def tiles(attr):
    return [float(attr[0, 0, 32 * (s // 7), 32 * (s % 7)]) for s in range(49)]


out = {"input": "randn(1,3,224,224) float64, CPU generator seed 5", "mask": "7x7 tiles of 32 px",
       "target": target}
with torch.no_grad():
    start = time.perf_counter()
    out["feature_ablation"] = tiles(FeatureAblation(model).attribute(
        x, target=target, feature_mask=mask, baselines=0.0, perturbations_per_eval=16))
    print(f"FeatureAblation {time.perf_counter() - start:.1f} s", file=sys.stderr)
    for name, method in (("kernel_shap", KernelShap), ("lime", Lime)):
        recorded = []

        def recording(base):
            class Recording(base):
                def fit(self, train_data, **kwargs):
                    for batch in train_data:
                        recorded.append(batch)
                    return super().fit(train_data, **kwargs)
            return Recording

        if name == "lime":
            explainer = Lime(model, interpretable_model=recording(SkLearnLasso)(alpha=0.01))
        else:
            explainer = KernelShap(model)
            explainer.interpretable_model = recording(SkLearnLinearRegression)()
        torch.manual_seed(0)
        attr = explainer.attribute(x, target=target, feature_mask=mask, baselines=0.0, n_samples=100,
                                   perturbations_per_eval=32)
        z, y, w = (torch.cat([b[i] for b in recorded]) for i in range(3))
        out[name] = {"coalitions": ["".join(str(int(v)) for v in row) for row in z.tolist()],
                     "outputs": y.double().flatten().tolist(), "weights": w.double().flatten().tolist(),
                     "coefficients": tiles(attr)}
        # Captum hands scikit-learn float32 copies and stops Lasso at tolerance 1e-4: the same fit in
        # float64, converged, as netlens solves it.
        refit = (Lasso(alpha=0.01, tol=1e-12, max_iter=10**6) if name == "lime" else LinearRegression()).fit(
            z.double().numpy(), y.double().flatten().numpy(), sample_weight=w.double().flatten().numpy())
        out[name]["coefficients_float64"] = refit.coef_.tolist()
        # With FULL=1, two full runs for the docs (how far two seeds' estimates lie apart).
        for seed in (0, 1) if os.environ.get("FULL") else ():
            torch.manual_seed(seed)
            start = time.perf_counter()
            full = method(model).attribute(x, target=target, feature_mask=mask, baselines=0.0, n_samples=1000,
                                           perturbations_per_eval=32)
            out[f"{name}_1000_seed{seed}"] = tiles(full)
            print(f"{name} 1000 samples, seed {seed}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/captum_superpixels_squeezenet.json"
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", path, file=sys.stderr)
