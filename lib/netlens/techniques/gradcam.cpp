// Grad-CAM (Selvaraju et al. 2017) at one or many layers. All layers share ONE forward and ONE
// backward pass through the lens. The raw output is Captum's LayerGradCam map (no ReLU, layer
// resolution, 1 x 1 x h x w); the rendering applies ReLU, upsampling and min-max scaling as
// pytorch-grad-cam does.
#include "netlens/techniques/cam.h"
#include "netlens/techniques/common.h"
#include "netlens/techniques/gradient_family.h"

namespace netlens {

TechniqueInfo GradCamTechnique() {
  return Batched({"gradcam", "Grad-CAM class activation maps at one or more layers", CamOptions(),
          [](TechniqueContext& ctx) { return RunGradientCam(ctx, "gradcam", &GradCam); }});
}

}  // namespace netlens
