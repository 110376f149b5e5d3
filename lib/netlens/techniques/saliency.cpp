// saliency (vanilla backprop, Simonyan et al. 2014): d f_t / d x. The raw output keeps the sign;
// the rendering takes |.| (Captum's Saliency applies abs() to the raw result by default).
#include "netlens/techniques/common.h"
#include "netlens/techniques/gradient_family.h"

namespace netlens {

TechniqueInfo SaliencyTechnique() {
  return Batched({"saliency", "vanilla gradient of the target logit with respect to the input", {},
          [](TechniqueContext& ctx) {
            Gradients g = TargetGradients(ctx, {});
            return std::vector<Artifact>{{"saliency", g.input_grad}};
          }});
}

}  // namespace netlens
