// Neuron groups ("The Building Blocks of Interpretability", Olah et al. 2018): a layer's spatial
// activations (h*w positions x C channels; a signed layer split into its positive and negative
// parts) factorized by NMF into k groups of channels that fire together; each group has a spatial map, channel loadings (a direction in the
// layer's space) and an attribution to the target class.
#pragma once

#include <opencv2/core.hpp>
#include "netlens/model/libtorch.h"

#include <string>
#include <vector>

#include "netlens/techniques/nmf.h"

namespace netlens {

struct NeuronGroups {
  torch::Tensor maps;        // k x h x w: where each group fires (NMF's W), float64, CPU
  torch::Tensor loadings;    // k x C: each group's channel direction (NMF's unit-norm H; signed: H+ - H-)
  std::vector<double> attribution;  // per group: sum_p W[p,g] * (H[g] . dA[:, p]) (if a gradient)
  std::vector<double> errors;       // relative reconstruction error per NMF iteration
  double negative_share = 0;        // share of the activation's mass below 0
  bool split_signs = false;         // negative_share > 1%: NMF of [a+, a-]; loadings = H+ - H- (signed)
};

// `activation` 1 x C x h x w; `gradient` the target's gradient there (same shape) or undefined.
NeuronGroups FactorizeActivation(const torch::Tensor& activation, const torch::Tensor& gradient,
                                 const NmfOptions& options);

// The groups colour-coded over a gray copy of `display`: each position takes the colour of its
// strongest group, opacity by its strength.
cv::Mat GroupsPicture(const torch::Tensor& maps, const cv::Mat& display);

// The colour of group g (BGR), as used by GroupsPicture.
cv::Scalar GroupColor(int64_t g);

}  // namespace netlens
