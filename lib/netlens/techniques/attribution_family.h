// Attribution techniques beyond plain gradients, each defined in its own .cpp file.
#pragma once

#include "netlens/techniques/technique.h"

namespace netlens {

TechniqueInfo SmoothGradTechnique();
TechniqueInfo IntegratedGradientsTechnique();
TechniqueInfo OcclusionTechnique();
TechniqueInfo LayerGradientTechnique();
TechniqueInfo LayerConductanceTechnique();
TechniqueInfo InternalInfluenceTechnique();
TechniqueInfo NeuronConductanceTechnique();
TechniqueInfo GradientShapTechnique();
TechniqueInfo DeepLiftTechnique();
TechniqueInfo DeepLiftShapTechnique();
TechniqueInfo LrpTechnique();
TechniqueInfo FeatureAblationTechnique();  // superpixels.h: segmentation and baselines
TechniqueInfo KernelShapTechnique();
TechniqueInfo LimeTechnique();

// Nodes and weights of the n-point Gauss-Legendre rule on [-1, 1], in float64 (ascending nodes).
void GaussLegendre(int64_t n, std::vector<double>& nodes, std::vector<double>& weights);

// IG path points a_k in [0, 1] and weights w_k for `method` (Captum's approximation methods).
void IntegrationRule(const std::string& method, int64_t steps, std::vector<double>& alphas,
                     std::vector<double>& weights);

// A completeness check for the manifest: sum_attribution against logit_difference (the change of
// the target logit the attribution should account for), delta and relative_delta.
Json CompletenessMetrics(double sum_attribution, double logit_difference);

// The options of a path integral (steps, method, baseline, blur_sigma, batch_size, seed), shared
// by integrated-gradients and layer-conductance, and the baseline they describe: zero (Captum's
// default), black, blur, uniform (seeded) or an image file, in the model's input space.
OptionTable IntegrationOptions();
torch::Tensor IntegrationBaseline(TechniqueContext& ctx);
torch::Tensor BaselineOf(TechniqueContext& ctx, const std::string& kind);

// The straight path from the baseline (--baseline) to the input at the points of --method's rule
// for `points` points (a batch of that many inputs, in the input's type and device), and the
// rule's weights.
struct IntegrationPath {
  torch::Tensor baseline, path;
  std::vector<double> weights;
};
IntegrationPath IntegrationPathOf(TechniqueContext& ctx, int64_t points);

}  // namespace netlens
