// XGrad-CAM (Fu et al. 2020): w_k = sum_ij g A / (sum_ij A + 1e-7); cam = sum_k w_k A_k.
#include "netlens/techniques/cam.h"

namespace netlens {

TechniqueInfo XGradCamTechnique() {
  return Batched({"xgradcam", "XGrad-CAM: gradients weighted by normalized activations", CamOptions(),
          [](TechniqueContext& ctx) {
            return RunGradientCam(ctx, "xgradcam", [](const torch::Tensor& A, const torch::Tensor& g) {
              const torch::Tensor w = (g * A / (A.sum({2, 3}, true) + 1e-7)).sum({2, 3}, true);
              return (w * A).sum(1, true);
            });
          }});
}

}  // namespace netlens
