# Prints Captum's infidelity and sensitivity_max for the case of the unit test
# Evaluate.InfidelityAndSensitivityEqualCaptumsOnTheBundledCnn (run from the repository root with
# Captum's source at CAPTUM=/path/to/captum): /usr/bin/python3 tools/check_captum_metrics.py
import os
import sys, torch
sys.path.insert(0, os.environ.get("CAPTUM", "/tmp/captum"))
from captum.attr import Saliency
from captum.metrics import infidelity, sensitivity_max
torch.set_grad_enabled(True)
m = torch.jit.load("models/fashion_cnn.pt").double().eval()
g = torch.Generator().manual_seed(5)
x = torch.randn(1, 1, 28, 28, generator=g, dtype=torch.float64)
t = int(m(x).argmax(1))
sal = Saliency(m)
attr = sal.attribute(x, target=t, abs=False)
n, sigma, radius, seed = 8, 0.2, 0.05, 11
noise = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * sigma
def perturb(inputs):
    return noise, inputs - noise
inf = infidelity(m, perturb, x, attr, target=t, n_perturb_samples=n)
u = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
deltas = (u * 2 - 1) * radius
def perturb2(inputs, r):
    return inputs + deltas
sens = sensitivity_max(sal.attribute, x, perturb_func=perturb2, n_perturb_samples=n, target=t, abs=False)
print(t, repr(float(inf)), repr(float(sens)))
