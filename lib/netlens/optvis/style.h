// Style statistics of feature maps and their losses, for neural style transfer (Gatys et al.,
// "Image Style Transfer Using Convolutional Neural Networks", CVPR 2016) and its variants:
//   gram     G = F F^T / (C h w) per layer (F: C x hw), loss mean((G - G_s)^2) (the PyTorch
//            neural-style tutorial's normalization);
//   moments  per-channel mean and standard deviation (as AdaIN, Huang & Belongie 2017), loss
//            mean((mu - mu_s)^2) + mean((sigma - sigma_s)^2);
//   cross    Gram matrices between adjacent style layers, the deeper one resized to the shallower
//            one's positions (Novak & Nikulin, "Improving the Neural Algorithm of Artistic Style",
//            2016): G_l,l+1 = F_l F_{l+1}^T / (C_l h w);
//   sliced-wasserstein  the features projected on C random unit directions (new ones each step,
//            seeded), both sets of projections sorted, loss mean((sorted - sorted_s)^2) with the
//            style's sorted values resampled to the picture's count (Heitz et al., "A Sliced
//            Wasserstein Loss for Neural Texture Synthesis", CVPR 2021).
#pragma once

#include "netlens/model/libtorch.h"

#include <string>
#include <vector>

namespace netlens::optvis {

enum class StyleMetric { kGram, kMoments, kCross, kSlicedWasserstein };
StyleMetric ParseStyleMetric(const std::string& name);

// The style of one image: per layer, the statistics the metric compares (for sliced-wasserstein,
// the features themselves).
struct StyleTarget {
  std::vector<torch::Tensor> stats;
};

// Statistics of `features` (one per style layer, each 1 x C x h x w) under `metric`.
StyleTarget StyleStatistics(const std::vector<torch::Tensor>& features, StyleMetric metric);

// Per-layer losses (one value per entry of `features`; for cross, the last layer's is 0) of the
// picture's features against a target, each times its entry of `scales` (1 where it has none).
// `generator` draws the sliced-wasserstein directions.
std::vector<torch::Tensor> StyleLosses(const std::vector<torch::Tensor>& features,
                                       const StyleTarget& target, StyleMetric metric,
                                       at::Generator& generator, const std::vector<double>& scales = {});

}  // namespace netlens::optvis
