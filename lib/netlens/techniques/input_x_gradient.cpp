// input x gradient (Shrikumar et al. 2016): x * d f_t / d x, with x the normalized model input.
#include "netlens/techniques/common.h"
#include "netlens/techniques/gradient_family.h"

namespace netlens {

TechniqueInfo InputXGradientTechnique() {
  return Batched({"input-x-gradient", "input times gradient of the target logit", {},
          [](TechniqueContext& ctx) {
            Gradients g = TargetGradients(ctx, {});
            return std::vector<Artifact>{{"input_x_gradient", ctx.input.tensor * g.input_grad}};
          }});
}

}  // namespace netlens
