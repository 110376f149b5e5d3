// guided backprop (Springenberg et al. 2015): every ReLU's backward becomes
// grad_in = grad_out * [x > 0] * [grad_out > 0], for ReLU modules, functional and in-place relu
// and ReLU6 alike (the lens replaces each op in the graph).
#include "netlens/techniques/common.h"
#include "netlens/techniques/gradient_family.h"
#include "netlens/techniques/rectifier_report.h"

namespace netlens {

TechniqueInfo GuidedTechnique() {
  return Batched({"guided", "guided backpropagation: gradient with positive-only ReLU backward", {},
          [](TechniqueContext& ctx) {
            Gradients g = TargetGradients(ctx, {}, BackwardRule::kGuided);
            ctx.metrics["activations"] = RectifierReport(ctx.model, BackwardRule::kGuided);
            Artifact a{"guided", g.input_grad};
            a.pos_neg = true;
            return std::vector<Artifact>{a};
          }});
}

}  // namespace netlens
