// Ablation-CAM (Desai & Ramaswamy 2020), pytorch-grad-cam's form: w_k = (y - y_k) / y with y the
// target logit and y_k the logit when channel k of the layer is set to zero (the lens scales the
// layer's output by a per-sample channel mask; batched, no autograd); cam = sum_k w_k A_k. On a
// token layer channel k is removed from every token, prefix tokens included.
#include "netlens/techniques/cam.h"
#include "netlens/techniques/common.h"

namespace netlens {

TechniqueInfo AblationCamTechnique() {
  OptionTable extra{{"batch_size", OptionType::kInt, "ablated copies per forward pass", 32, {}, 1.0, 4096.0}};
  return {"ablationcam", "Ablation-CAM: channels weighted by the score drop when removed",
          CamOptions(extra), [](TechniqueContext& ctx) {
            return RunPerturbationCam(ctx, "ablationcam", [](TechniqueContext& c, const std::string& layer,
                                                             const SpatialLayout& layout, const torch::Tensor& A) {
              torch::NoGradGuard no_grad;
              const torch::Tensor& x = c.input.tensor;
              const int64_t K = A.size(1), batch = c.params.Int("batch_size");
              const double y = c.model.Logits(x)[0][c.target].item<double>();
              std::vector<torch::Tensor> scores;
              for (int64_t start = 0; start < K; start += batch) {
                const int64_t n = std::min(batch, K - start);
                torch::Tensor scale = torch::ones({n, K}, A.options());
                for (int64_t i = 0; i < n; ++i) scale[i][start + i].fill_(0);
                // The channel axis of the layer's own layout (tokens: every token's channel k).
                scale = layout.kind == SpatialLayout::Kind::kNCHW   ? scale.view({n, K, 1, 1})
                        : layout.kind == SpatialLayout::Kind::kNHWC ? scale.view({n, 1, 1, K})
                                                                    : scale.view({n, 1, K});
                const torch::Tensor logits =
                    c.model.lens().ForwardScaled(x.expand({n, -1, -1, -1}), layer, scale);
                scores.push_back(logits.select(1, c.target));
              }
              const torch::Tensor w = ((y - torch::cat(scores)) / y).view({1, K, 1, 1});
              return (w * A).sum(1, true);
            });
          }, BatchPass::kForward};
}

}  // namespace netlens
