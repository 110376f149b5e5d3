// Grad-CAM++ (Chattopadhyay et al. 2018), pytorch-grad-cam's closed form:
// a = g^2 / (2 g^2 + sum_ij(A) g^3 + 1e-6) where g != 0 (else 0); w_k = sum_ij relu(g) a;
// cam = sum_k w_k A_k.
#include "netlens/techniques/cam.h"

namespace netlens {

TechniqueInfo GradCamPlusPlusTechnique() {
  return Batched({"gradcam++", "Grad-CAM++: CAM weighted by positive higher-order gradient terms",
          CamOptions(), [](TechniqueContext& ctx) {
            return RunGradientCam(ctx, "gradcam++", [](const torch::Tensor& A, const torch::Tensor& g) {
              const torch::Tensor g2 = g * g, g3 = g2 * g;
              const torch::Tensor sum_a = A.sum({2, 3}, true);
              torch::Tensor aij = g2 / (2 * g2 + sum_a * g3 + 1e-6);
              aij = torch::where(g != 0, aij, torch::zeros_like(aij));
              const torch::Tensor w = (g.clamp_min(0) * aij).sum({2, 3}, true);
              return (w * A).sum(1, true);
            });
          }});
}

}  // namespace netlens
