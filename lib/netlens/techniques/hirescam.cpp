// HiResCAM (Draelos & Carin 2020): cam = sum_k g_k * A_k, elementwise.
#include "netlens/techniques/cam.h"

namespace netlens {

TechniqueInfo HiResCamTechnique() {
  return Batched({"hirescam", "HiResCAM: activations times gradients, elementwise", CamOptions(),
          [](TechniqueContext& ctx) {
            return RunGradientCam(ctx, "hirescam", [](const torch::Tensor& A, const torch::Tensor& g) {
              return (g * A).sum(1, true);
            });
          }});
}

}  // namespace netlens
