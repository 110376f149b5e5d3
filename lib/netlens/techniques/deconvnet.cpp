// deconvnet (Zeiler & Fergus 2014): ReLU backward becomes grad_in = relu(grad_out), ignoring the
// forward mask.
#include "netlens/techniques/common.h"
#include "netlens/techniques/gradient_family.h"
#include "netlens/techniques/rectifier_report.h"

namespace netlens {

TechniqueInfo DeconvnetTechnique() {
  return Batched({"deconvnet", "deconvnet: gradient with ReLU backward replaced by relu(grad_out)", {},
          [](TechniqueContext& ctx) {
            Gradients g = TargetGradients(ctx, {}, BackwardRule::kDeconvnet);
            ctx.metrics["activations"] = RectifierReport(ctx.model, BackwardRule::kDeconvnet);
            Artifact a{"deconvnet", g.input_grad};
            a.pos_neg = true;
            return std::vector<Artifact>{a};
          }});
}

}  // namespace netlens
