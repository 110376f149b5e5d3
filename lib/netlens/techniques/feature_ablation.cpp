// Feature ablation on superpixels, as Captum's FeatureAblation with a feature mask: each
// superpixel s in turn is set to the baseline, and every pixel of s gets
//   attr_s = f_t(x) - f_t(x with s ablated).
// One forward per superpixel, in batches. Exact for a model linear in its input: the Shapley
// value of s, sum over its pixels of w (x - baseline).
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/superpixels.h"

namespace netlens {

TechniqueInfo FeatureAblationTechnique() {
  return {"feature-ablation", "feature ablation: output drop when each superpixel in turn is set to the baseline",
          SuperpixelOptions(),
          [](TechniqueContext& ctx) {
            const Superpixels sp = Segment(ctx, "feature-ablation");
            const torch::Tensor baseline = SuperpixelBaseline(ctx, sp);
            // Row 0 is the input itself, row 1 + s has superpixel s off.
            const torch::Tensor z = torch::cat({torch::ones({1, sp.count}), 1 - torch::eye(sp.count)});
            const torch::Tensor y = EvaluateSuperpixels(ctx, baseline, sp, z, ctx.params.Int("batch_size")).scores;
            const torch::Tensor drop = y[0] - y.slice(0, 1);
            ctx.metrics["ablations"] = sp.count;
            return SuperpixelArtifacts(ctx, sp, "feature_ablation", drop);
          }, BatchPass::kForward};
}

}  // namespace netlens
