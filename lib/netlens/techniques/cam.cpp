#include "netlens/techniques/cam.h"

#include "netlens/core/errors.h"
#include "netlens/image/render.h"
#include "netlens/techniques/common.h"

namespace netlens {
namespace {

std::vector<Artifact> Assemble(TechniqueContext& ctx, const std::string& name,
                               const std::vector<std::string>& layers,
                               const std::vector<torch::Tensor>& cams) {
  const bool nearest = ctx.params.Str("interpolation") == "nearest";
  std::vector<Artifact> out;
  for (size_t i = 0; i < layers.size(); ++i) {
    Artifact a{name, cams[i], Artifact::Kind::kLayerMap, layers[i]};
    a.nearest = nearest;
    out.push_back(a);
  }
  if (layers.size() > 1) {
    const auto& x = ctx.input.tensor;
    out.push_back({name, FuseCams(cams, x.size(2), x.size(3)), Artifact::Kind::kLayerMap, "fused"});
  }
  return out;
}

void CheckSpatial(const std::string& layer, const torch::Tensor& a) {
  if (a.dim() != 4)
    throw UsageError("CAM needs a layer with N x K x h x w output; " + layer + " has shape " +
                     c10::str(a.sizes()) + " (pick a convolutional layer; netlens inspect lists shapes)");
}

}  // namespace

OptionTable CamOptions(OptionTable extra) {
  OptionTable table{
      {"layer", OptionType::kStringList,
       "layers to explain: module paths as in print(model), conv-N or last-conv",
       Json::array({"last-conv"})},
      {"interpolation", OptionType::kString, "upsampling of the map when rendered", "bilinear",
       {"bilinear", "nearest"}},
  };
  table.insert(table.end(), extra.begin(), extra.end());
  return table;
}

torch::Tensor FuseCams(const std::vector<torch::Tensor>& cams, int64_t height, int64_t width) {
  std::vector<torch::Tensor> scaled;
  for (const auto& cam : cams) {
    std::vector<torch::Tensor> per_sample;
    for (int64_t n = 0; n < cam.size(0); ++n) {
      torch::Tensor up = ResizeMap(cam[n][0].clamp_min(0), height, width, /*nearest=*/false);
      up = up - up.min();
      per_sample.push_back((up / (1e-7 + up.max())).view({1, 1, height, width}));
    }
    scaled.push_back(torch::cat(per_sample, 0));
  }
  return torch::stack(scaled).mean(0);
}

std::vector<Artifact> RunGradientCam(TechniqueContext& ctx, const std::string& name, GradientCamFn fn) {
  const auto layers = ResolveLayers(ctx.model, ctx.params.Strs("layer"));
  const Gradients g = TargetGradients(ctx.model, ctx.input.tensor, ctx.target, layers,
                                      BackwardRule::kVanilla, /*input_grad=*/false);
  std::vector<torch::Tensor> cams;
  for (size_t i = 0; i < layers.size(); ++i) {
    CheckSpatial(layers[i], g.activations[i]);
    cams.push_back(fn(g.activations[i], g.layer_grads[i]));
  }
  return Assemble(ctx, name, layers, cams);
}

std::vector<Artifact> RunPerturbationCam(TechniqueContext& ctx, const std::string& name,
                                         PerturbationCamFn fn) {
  const auto layers = ResolveLayers(ctx.model, ctx.params.Strs("layer"));
  Lens::Capture capture;
  {
    torch::NoGradGuard no_grad;
    capture = ctx.model.lens().Forward(ctx.input.tensor, layers);
  }
  std::vector<torch::Tensor> cams;
  for (size_t i = 0; i < layers.size(); ++i) {
    CheckSpatial(layers[i], capture.activations[i]);
    cams.push_back(fn(ctx, layers[i], capture.activations[i]));
  }
  return Assemble(ctx, name, layers, cams);
}

}  // namespace netlens
