// Layer-CAM (Jiang et al. 2021): cam = sum_k relu(g_k) * A_k, elementwise (no spatial pooling).
#include "netlens/techniques/cam.h"

namespace netlens {

TechniqueInfo LayerCamTechnique() {
  return Batched({"layercam", "Layer-CAM: activations weighted elementwise by positive gradients",
          CamOptions(), [](TechniqueContext& ctx) {
            return RunGradientCam(ctx, "layercam", [](const torch::Tensor& A, const torch::Tensor& g) {
              return (g.clamp_min(0) * A).sum(1, true);
            });
          }});
}

}  // namespace netlens
