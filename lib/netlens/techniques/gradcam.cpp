// Grad-CAM (Selvaraju et al. 2017) at one or many layers. All layers share ONE forward and ONE
// backward pass through the lens. The raw output is Captum's LayerGradCam map (no ReLU, layer
// resolution, 1 x 1 x h x w); the rendering applies ReLU, upsampling and min-max scaling as
// pytorch-grad-cam does.
#include "netlens/techniques/common.h"
#include "netlens/techniques/gradient_family.h"

namespace netlens {

TechniqueInfo GradCamTechnique() {
  OptionTable options{
      {"layer", OptionType::kStringList,
       "layers to explain: module paths as in print(model), conv-N or last-conv",
       Json::array({"last-conv"})},
      {"interpolation", OptionType::kString, "upsampling of the map when rendered",
       "bilinear", {"bilinear", "nearest"}},
  };
  return {"gradcam", "Grad-CAM class activation maps at one or more layers", options,
          [](TechniqueContext& ctx) {
            const auto layers = ResolveLayers(ctx.model, ctx.params.Strs("layer"));
            Gradients g = TargetGradients(ctx.model, ctx.input.tensor, ctx.target, layers);
            std::vector<Artifact> out;
            for (size_t i = 0; i < layers.size(); ++i) {
              Artifact a{"gradcam", GradCam(g.activations[i], g.layer_grads[i]),
                         Artifact::Kind::kLayerMap, layers[i]};
              a.nearest = ctx.params.Str("interpolation") == "nearest";
              out.push_back(a);
            }
            return out;
          }};
}

}  // namespace netlens
