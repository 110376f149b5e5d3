// Score-CAM (Wang et al. 2020), pytorch-grad-cam's form: each channel A_k, upsampled to the input
// size as pytorch-grad-cam does (torch.nn.UpsamplingBilinear2d, i.e. bilinear with
// align_corners=True: the corner pixels of the map land on the corner pixels of the image) and min-max scaled to [0, 1], masks the input; the target logits of the K
// masked inputs (batched, no autograd) go through a softmax over k to give w_k;
// cam = sum_k w_k A_k.
#include <torch/nn/functional/upsampling.h>

#include "netlens/techniques/cam.h"
#include "netlens/techniques/common.h"

namespace netlens {

TechniqueInfo ScoreCamTechnique() {
  OptionTable extra{{"batch_size", OptionType::kInt, "masked inputs per forward pass", 32, {}, 1.0, 4096.0}};
  return {"scorecam", "Score-CAM: channels weighted by the score of the input they mask",
          CamOptions(extra), [](TechniqueContext& ctx) {
            return RunPerturbationCam(ctx, "scorecam", [](TechniqueContext& c, const std::string&,
                                                          const SpatialLayout&, const torch::Tensor& A) {
              namespace F = torch::nn::functional;
              torch::NoGradGuard no_grad;
              const torch::Tensor& x = c.input.tensor;
              const torch::Tensor up = F::interpolate(
                  A, F::InterpolateFuncOptions()
                         .size(std::vector<int64_t>{x.size(2), x.size(3)})
                         .mode(torch::kBilinear)
                         .align_corners(true))[0];  // K x H x W
              const torch::Tensor lo = up.amin({1, 2}, true), hi = up.amax({1, 2}, true);
              const torch::Tensor masks = (up - lo) / (hi - lo + 1e-8);
              const int64_t batch = c.params.Int("batch_size");
              std::vector<torch::Tensor> scores;
              for (int64_t start = 0; start < masks.size(0); start += batch) {
                const torch::Tensor m = masks.slice(0, start, std::min(start + batch, masks.size(0))).unsqueeze(1);
                scores.push_back(c.model.Logits(x * m).select(1, c.target));
              }
              const torch::Tensor w = torch::softmax(torch::cat(scores), 0).view({1, -1, 1, 1});
              return (w * A).sum(1, true);
            });
          }, BatchPass::kForward};
}

}  // namespace netlens
