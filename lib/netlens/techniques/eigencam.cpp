// Eigen-CAM (Muhammad & Yeasin 2020), pytorch-grad-cam's get_2d_projection: the (h*w) x K
// activation matrix, centred per channel, projected on its first right singular vector. Class
// independent, no gradients. SVD leaves the sign free; netlens picks the sign that makes the map
// correlate positively with the channel-summed activation, so results are reproducible.
#include "netlens/techniques/cam.h"

namespace netlens {

TechniqueInfo EigenCamTechnique() {
  return {"eigencam", "Eigen-CAM: first principal component of the layer's activations",
          CamOptions(), [](TechniqueContext& ctx) {
            return RunPerturbationCam(ctx, "eigencam", [](TechniqueContext&, const std::string&,
                                                          const SpatialLayout&, const torch::Tensor& A) {
              const int64_t K = A.size(1), h = A.size(2), w = A.size(3);
              const torch::Tensor m = A[0].reshape({K, h * w}).t().to(torch::kFloat64);
              const torch::Tensor centred = m - m.mean(0, true);
              const auto svd = torch::linalg_svd(centred, /*full_matrices=*/false);
              const torch::Tensor v = std::get<2>(svd)[0];  // first row of V^T
              torch::Tensor projection = centred.matmul(v);
              const torch::Tensor summed = m.sum(1);
              if ((projection * (summed - summed.mean())).sum().item<double>() < 0) projection = -projection;
              return projection.view({1, 1, h, w}).to(A.scalar_type());
            });
          }};
}

}  // namespace netlens
