// The pieces of `evaluate` (techniques/evaluate.cpp) that tests check against hand computations.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "netlens/model/model.h"
#include "netlens/techniques/technique.h"

namespace netlens {

// The map pixels are ranked by: input attributions summed over channels; layer maps after ReLU,
// upsampled (bilinear, or nearest when the artifact says so) to height x width.
torch::Tensor RankingMap(const Artifact& a, int64_t height, int64_t width);

// RISE's blur: Gaussian kernel 11 x 11, sigma 5, per channel, zero padding.
torch::Tensor RiseBlur(const torch::Tensor& x);

// RISE's area under a curve sampled at equal steps: (sum - first/2 - last/2) / (n - 1).
double RiseAuc(const std::vector<double>& curve);

// p(target) at steps + 1 points: with `deletion`, pixels (all channels) set to 0 in order of
// `map` (largest first, ties by position); else inserted in that order into RiseBlur(x). Step i
// changes round(i * h * w / steps) pixels.
std::vector<double> CausalCurve(Model& model, const torch::Tensor& x, const torch::Tensor& map, int64_t target,
                                bool deletion, int64_t steps, int64_t batch_size);

// Captum's infidelity (captum.metrics.infidelity, normalize=False): the mean over `samples`
// seeded Gaussian perturbations I (SeededNormal(x, samples, seed) * sigma) of
// (sum(I * attribution) - (f_t(x) - f_t(x - I)))^2, f_t the target's logit.
double Infidelity(Model& model, const torch::Tensor& x, const torch::Tensor& attribution, int64_t target,
                  int64_t samples, double sigma, uint64_t seed, int64_t batch_size);

// Captum's sensitivity_max: max over `samples` perturbations d uniform in [-radius, radius]
// (SeededUniform) of ||e(x + d) - e(x)||_F / ||e(x)||_F, e the technique's map `map` (recomputed
// by running the technique on x + d).
double MaxSensitivity(TechniqueContext& ctx, const std::string& technique, const Artifact& map, int64_t samples,
                      double radius, uint64_t seed);

// An attribution as an input-shaped tensor: input attributions as they are, layer maps
// upsampled after ReLU and repeated over the channels.
torch::Tensor InputShaped(const Artifact& a, const torch::Tensor& x);

}  // namespace netlens
