#include "netlens/techniques/cam.h"

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
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

}  // namespace

OptionTable CamOptions(OptionTable extra) {
  OptionTable table{
      {"layer", OptionType::kStringList,
       "layers to explain: module paths as in print(model), conv-N or last-conv",
       Json::array({"last-conv"})},
      {"interpolation", OptionType::kString, "upsampling of the map when rendered", "bilinear",
       {"bilinear", "nearest"}},
      TokenLayoutOption(),
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
  const std::vector<std::string> candidates =
      ctx.params.IsSet("layer") ? std::vector<std::string>{} : TransformerCamCandidates(ctx.model);
  const auto layers = candidates.empty() ? ResolveLayers(ctx.model, ctx.params.Strs("layer")) : candidates;
  const Gradients g = TargetGradients(ctx, layers, BackwardRule::kVanilla, /*input_grad=*/false);
  std::vector<torch::Tensor> spatial_a, spatial_g;
  for (size_t i = 0; i < layers.size(); ++i) {
    const SpatialLayout layout = LayerLayout(ctx, name, layers[i], g.activations[i], !candidates.empty());
    spatial_a.push_back(ToSpatial(g.activations[i], layout));
    spatial_g.push_back(ToSpatial(g.layer_grads[i], layout));
  }
  const auto reaches = [&](size_t i) { return spatial_g[i].abs().max().item<double>() > 0; };
  if (!candidates.empty()) {
    // A transformer without --layer: the deepest normalization whose patch positions reach the
    // target. In ViT only the class token reaches the head from the last block's output, its MLP
    // and its second norm (their patch gradients are zero); the block's first norm feeds the
    // class token's attention, so its patch gradients are not (pytorch-grad-cam's advice for ViT).
    const size_t pick = PickTransformerDefault(name, candidates, reaches);
    LayerLayout(ctx, name, layers[pick], g.activations[pick]);  // logged and recorded for the one explained
    return Assemble(ctx, name, {layers[pick]}, {fn(spatial_a[pick], spatial_g[pick])});
  }
  std::vector<torch::Tensor> cams;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!reaches(i))
      Warn(ctx, name + ": the gradient at " + layers[i] + " is zero at every position" +
                    (g.activations[i].dim() == 3 ? " (only the prefix tokens reach the target: in a ViT, pick the "
                                                   "block's first norm, e.g. encoder.layers.encoder_layer_11.ln_1)"
                                                 : "") +
                    "; its map is zero");
    cams.push_back(fn(spatial_a[i], spatial_g[i]));
  }
  return Assemble(ctx, name, layers, cams);
}

std::vector<Artifact> RunPerturbationCam(TechniqueContext& ctx, const std::string& name,
                                         PerturbationCamFn fn) {
  // On a transformer without --layer, the layer the gradient CAMs take (one extra forward and
  // backward pass to find it).
  const std::string transformer_layer = ctx.params.IsSet("layer") ? "" : TransformerDefaultLayer(ctx, name);
  const auto layers = transformer_layer.empty() ? ResolveLayers(ctx.model, ctx.params.Strs("layer"))
                                                : std::vector<std::string>{transformer_layer};
  Lens::Capture capture;
  {
    torch::NoGradGuard no_grad;
    capture = ctx.model.lens().Forward(ctx.input.tensor, layers);
  }
  std::vector<torch::Tensor> cams;
  for (size_t i = 0; i < layers.size(); ++i) {
    const SpatialLayout layout = LayerLayout(ctx, name, layers[i], capture.activations[i]);
    cams.push_back(fn(ctx, layers[i], layout, ToSpatial(capture.activations[i], layout)));
  }
  return Assemble(ctx, name, layers, cams);
}

}  // namespace netlens
