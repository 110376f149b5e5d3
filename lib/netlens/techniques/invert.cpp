// Inversion (Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them",
// CVPR 2015): a picture whose activations at a layer match the input image's, found from noise by
// minimizing ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 + tv * TV(x) + l2 * ||x - 0.5||^2 (means over
// the picture; the paper's alpha-norm prior with alpha = 2). What survives is what the layer
// keeps of the image; early layers give the photo back, late ones keep parts and textures.
// The picture uses the featurevis parameterizations (default: FFT + decorrelated colour) at the
// model's input size, with small jitter (--transforms jitter) for robustness.
#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/optvis/objective.h"
#include "netlens/techniques/optvis_family.h"
#include "netlens/techniques/optvis_options.h"

namespace netlens {

namespace {

std::vector<Artifact> RunInvert(TechniqueContext& ctx) {
  const Params& p = ctx.params;
  Model& model = ctx.model;
  const std::string layer = model.lens().Resolve(p.Str("layer"));
  const torch::Tensor target = optvis::PictureFromBgr(ctx.input.display, model.meta(), model.device(),
                                                      model.dtype());
  torch::Tensor reference;
  {
    torch::NoGradGuard no_grad;
    reference = model.lens().Forward(ToModelInputOf(target, model), {layer}, BackwardRule::kVanilla,
                                     /*with_output=*/false).activations[0];
  }
  if (reference.abs().max().item<double>() == 0)
    throw RuntimeError("invert: " + layer + " is all zeros for this image; nothing to match");
  optvis::Objective objective;
  optvis::Term match;
  match.kind = optvis::Term::Kind::kMatch;
  match.layer = layer;
  match.reference = reference;
  match.text = "match " + layer;
  objective.terms.push_back(match);
  objective.layers = {layer};
  for (const auto& [key, kind] : {std::pair<const char*, optvis::Term::Kind>{"tv", optvis::Term::Kind::kTV},
                                  {"l2", optvis::Term::Kind::kL2}}) {
    if (p.Float(key) == 0) continue;
    optvis::Term t;
    t.kind = kind;
    t.weight = -p.Float(key);
    t.text = key;
    objective.terms.push_back(t);
  }
  const int64_t h = target.size(2), w = target.size(3);
  const optvis::OptimizeOptions run = OptimizeOptionsFrom(p, "invert " + layer);
  CheckOptimizationMemory(p, model, "invert", &run, 1, h, w);
  optvis::ImageParam param(ParamOptionsFrom(p, model, 1, h, w));
  optvis::Transform transform(TransformOptionsFrom(p, model, h, w), static_cast<uint64_t>(p.Int("seed")) + 1);
  Log().info("invert: matching {} ({} values) from noise, {} steps", layer, reference.numel(), p.Int("steps"));
  const optvis::OptimizeResult result = optvis::Optimize(
      param,
      [&](const torch::Tensor& picture) {
        const torch::Tensor seen = transform(picture);
        // Jitter and padding change the size: compare at the reference's positions.
        const torch::Tensor input = optvis::Resized(seen, h, w);
        const Lens::Capture capture = model.lens().Forward(ToModelInputOf(input, model), {layer},
                                                           BackwardRule::kVanilla, false);
        return objective.Evaluate(capture.activations, torch::Tensor(), picture);
      },
      run);
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor picture = result.picture.to(model.device(), model.dtype());
    const torch::Tensor act = model.lens().Forward(ToModelInputOf(picture, model), {layer},
                                                   BackwardRule::kVanilla, false).activations[0];
    const double rel = ((act - reference).pow(2).sum() / reference.pow(2).sum()).item<double>();
    ctx.metrics["relative_error"] = rel;
    Log().info("invert: relative error at {}: {:.4f}", layer, rel);
  }
  std::vector<Artifact> out = OptimizationArtifacts(result, "invert_" + layer, {"from " + layer}, ctx);
  Artifact pair;
  pair.name = "invert_" + layer + "_pair";
  pair.kind = Artifact::Kind::kPicture;
  pair.tensor = torch::cat({target.to(torch::kCPU, result.picture.scalar_type()), result.picture});
  pair.captions = {"input", "from " + layer};
  out.push_back(pair);
  return out;
}

}  // namespace

TechniqueInfo InvertTechnique() {
  OptionTable options{
      {"layer", OptionType::kString, "layer whose activations the picture must match", nullptr,
       {}, {}, {}, true, "LAYER"},
      {"tv", OptionType::kFloat, "weight of the total-variation prior", 0.05, {}, 0.0, 1e6},
      {"l2", OptionType::kFloat, "weight of the L2 (alpha = 2) prior", 0.0, {}, 0.0, 1e6},
  };
  OptimizationDefaults defaults;
  defaults.steps = 256;
  defaults.transforms = "jitter";
  for (auto& o : OptimizationOptions(defaults)) options.push_back(o);
  TechniqueInfo info{"invert", "inversion: a picture whose activations at a layer match the image's "
                     "(Mahendran & Vedaldi)", options, RunInvert};
  info.kind = JobKind::kTransform;
  return info;
}

}  // namespace netlens
