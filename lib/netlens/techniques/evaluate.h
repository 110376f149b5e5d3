// The pieces of `evaluate` (techniques/evaluate.cpp) that tests check against hand computations.
#pragma once

#include "netlens/model/libtorch.h"

#include <string>
#include <utility>
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

// Spearman's rank correlation of two tensors of equal size (flattened; tied values get their
// average rank). 0 when either has no spread.
double Spearman(const torch::Tensor& a, const torch::Tensor& b);

// Mean structural similarity (Wang et al. 2004) of two H x W maps with values in [0, 1], with
// scikit-image's conventions (structural_similarity, gaussian_weights=True, sigma 1.5, data_range 1,
// K1 0.01, K2 0.03, population covariance): a Gaussian window of radius 5 and the mean over the
// pixels at least 5 from the border. Both sides must be at least 11.
double Ssim(const torch::Tensor& a, const torch::Tensor& b);

// The map the sanity check compares: input attributions as |a| summed over channels, layer maps
// as RankingMap; both H x W, float64.
torch::Tensor SanityMap(const Artifact& a, int64_t height, int64_t width);

// Adebayo et al.'s cascading model-parameter randomization (NeurIPS 2018) on the model itself:
// layers() are the modules that own parameters or buffers, from the output back to the input
// (the model's own parameters, named "", come last);
// Randomize(i) re-draws layer i's in place, as PyTorch's reset_parameters() leaves a new layer
// (weights of dimension >= 2 and their biases uniform in +-1/sqrt(fan_in); other parameters 1 for
// weights and 0 otherwise; running_mean 0, running_var 1), seeded by (seed, i). The destructor puts
// every original value back, so the model is unchanged for what runs next.
class CascadingRandomization {
 public:
  CascadingRandomization(Model& model, uint64_t seed);
  ~CascadingRandomization();
  CascadingRandomization(const CascadingRandomization&) = delete;
  CascadingRandomization& operator=(const CascadingRandomization&) = delete;

  const std::vector<std::string>& layers() const { return layers_; }
  void Randomize(size_t i);

 private:
  Model& model_;
  uint64_t seed_;
  std::vector<std::string> layers_;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> saved_;  // (live tensor, its original values)
};

// ROAD's noisy linear imputation (Rong et al., ICML 2022): the pixels where `remove` (H x W bool)
// is true get the values that make each of them the weighted mean of its in-image neighbours
// (weight 1/6 for the four direct ones, 1/12 for the diagonal ones), one sparse linear system
// solved by Eigen's SimplicialLDLT for all channels, plus Gaussian noise of standard deviation
// `noise` (seeded). x: 1 x C x H x W; returns the imputed copy.
torch::Tensor NoisyLinearImpute(const torch::Tensor& x, const torch::Tensor& remove, double noise, uint64_t seed);

}  // namespace netlens
