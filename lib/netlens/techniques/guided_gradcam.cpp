// Guided Grad-CAM (Selvaraju et al. 2017; Captum's GuidedGradCam): relu(Grad-CAM) upsampled to
// the input size (nearest, Captum's default) times the guided backprop map, broadcast over
// channels. Two passes: a vanilla one for the CAM and a guided one for the input gradient.
#include "netlens/image/render.h"
#include "netlens/techniques/cam.h"
#include "netlens/techniques/common.h"
#include "netlens/techniques/gradient_family.h"
#include "netlens/techniques/rectifier_report.h"

namespace netlens {

TechniqueInfo GuidedGradCamTechnique() {
  OptionTable options{
      {"layer", OptionType::kString, "layer of the CAM: a module path, conv-N or last-conv",
       "last-conv"},
      {"interpolation", OptionType::kString, "upsampling of the CAM to the input size",
       "nearest", {"bilinear", "nearest"}},
      TokenLayoutOption(),
  };
  return {"guided-gradcam", "guided backprop weighted by the upsampled Grad-CAM", options,
          [](TechniqueContext& ctx) {
            const std::string layer = ctx.model.lens().Resolve(ctx.params.Str("layer"));
            Gradients vanilla = TargetGradients(ctx.model, ctx.input.tensor, ctx.target, {layer},
                                                BackwardRule::kVanilla, /*input_grad=*/false);
            const SpatialLayout layout = LayerLayout(ctx, "guided-gradcam", layer, vanilla.activations[0]);
            const torch::Tensor cam =
                GradCam(ToSpatial(vanilla.activations[0], layout), ToSpatial(vanilla.layer_grads[0], layout));
            Gradients guided = TargetGradients(ctx.model, ctx.input.tensor, ctx.target, {},
                                               BackwardRule::kGuided);
            ctx.metrics["activations"] = RectifierReport(ctx.model, BackwardRule::kGuided);
            const auto& x = ctx.input.tensor;
            const bool nearest = ctx.params.Str("interpolation") == "nearest";
            const torch::Tensor up = ResizeMap(cam[0][0].clamp_min(0), x.size(2), x.size(3), nearest);
            Artifact a{"guided_gradcam", guided.input_grad * up.view({1, 1, x.size(2), x.size(3)})};
            a.pos_neg = true;
            Artifact c{"gradcam", cam, Artifact::Kind::kLayerMap, layer};
            c.nearest = nearest;
            return std::vector<Artifact>{a, c};
          }};
}

}  // namespace netlens
