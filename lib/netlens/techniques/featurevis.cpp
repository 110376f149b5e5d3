// Feature visualization (Olah et al., "Feature Visualization", Distill 2017; Lucid / Lucent):
// a picture optimized from noise so that an objective (a channel, neuron, layer, class,
// direction; optvis/objective.h) is as large as possible, with Lucid's defaults: a 128 x 128
// FFT-parameterized, colour-decorrelated picture through a sigmoid, Lucid's standard transforms,
// Adam with learning rate 0.05, 512 steps. A channel range optimizes one picture per channel in
// one batch; --diversity W adds Lucid's diversity penalty across that batch.
#include <cctype>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/techniques/common.h"
#include "netlens/optvis/objective.h"
#include "netlens/optvis/picture.h"
#include "netlens/techniques/optvis_family.h"
#include "netlens/techniques/optvis_options.h"

namespace netlens {

namespace {

std::string FileSafe(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    out += ok ? c : (c == ':' ? '-' : '_');
  }
  while (out.find("__") != std::string::npos) out.erase(out.find("__"), 1);
  return out.size() > 80 ? out.substr(0, 80) : out;
}

std::vector<Artifact> RunFeaturevis(TechniqueContext& ctx) {
  const Params& p = ctx.params;
  Model& model = ctx.model;
  optvis::Objective objective = optvis::ParseObjective(p.Str("objective"), model);
  objective.diversity = p.Float("diversity");
  if (objective.diversity != 0 && objective.batch < 2) {
    Warn(ctx, "--diversity needs a batch (a channel range such as LAYER:0..3); ignored");
    objective.diversity = 0;
  } else if (objective.diversity != 0 && objective.diversity_layer.empty()) {
    throw UsageError("--diversity compares the samples at a layer; the objective " +
                     Quote(objective.text) + " reads none");
  }
  const size_t diversity_index =
      objective.diversity != 0 ? optvis::UseLayer(objective, objective.diversity_layer) : 0;
  const int64_t size = p.Int("size");
  const optvis::TransformOptions seen = TransformOptionsFrom(p, model, size, size);
  const optvis::OptimizeOptions run = OptimizeOptionsFrom(p, "featurevis " + objective.text);
  CheckOptimizationMemory(p, model, "featurevis", &run, objective.batch,
                          seen.out_height > 0 ? seen.out_height : size + 2 * seen.pad,
                          seen.out_width > 0 ? seen.out_width : size + 2 * seen.pad, size, size);
  optvis::ImageParam param(ParamOptionsFrom(p, model, objective.batch, size, size));
  optvis::Transform transform(seen, static_cast<uint64_t>(p.Int("seed")) + 1);
  Log().info("featurevis: {} ({} picture(s) of {}x{}, {} steps)", objective.text, objective.batch,
             size, size, p.Int("steps"));
  auto evaluate = [&](const torch::Tensor& picture, const torch::Tensor& seen) {
    const Lens::Capture capture = model.lens().Forward(ToModelInputOf(seen, model), objective.layers,
                                                       BackwardRule::kVanilla, objective.needs_logits);
    torch::Tensor value = objective.Evaluate(capture.activations, capture.output, picture);
    if (objective.diversity != 0)
      value = value + objective.diversity * optvis::Diversity(capture.activations[diversity_index], picture.size(2), picture.size(3)) /
                          static_cast<double>(objective.batch);
    return value;
  };
  const optvis::OptimizeResult result = optvis::Optimize(
      param, [&](const torch::Tensor& picture) { return evaluate(picture, transform(picture)); },
      run);

  // The objective of the result seen without transforms (resampled as the model sees it).
  {
    torch::NoGradGuard no_grad;
    optvis::TransformOptions plain = optvis::TransformOptions::None();
    const auto sized = TransformOptionsFrom(p, model, size, size);
    plain.out_height = sized.out_height;
    plain.out_width = sized.out_width;
    optvis::Transform resample(plain, 0);
    const torch::Tensor picture = result.picture.to(model.device(), model.dtype());
    const torch::Tensor values = evaluate(picture, resample(picture)).to(torch::kCPU, torch::kFloat64).contiguous();
    ctx.metrics["objective_final"] = std::vector<double>(values.data_ptr<double>(),
                                                         values.data_ptr<double>() + values.numel());
  }
  std::vector<std::string> captions;
  for (int64_t b = 0; b < objective.batch; ++b) captions.push_back(objective.Caption(b));
  return OptimizationArtifacts(result, FileSafe(objective.text), captions, ctx);
}

}  // namespace

TechniqueInfo FeaturevisTechnique() {
  OptionTable options{
      {"objective", OptionType::kString,
       "what to maximize: LAYER:C (channel), LAYER:A..B (a batch), LAYER:C@Y,X (neuron), LAYER "
       "(DeepDream), class:LABEL, class:A..B, direction(LAYER, v.npy), l1, l2, tv, blur; combine "
       "with + - * ( )",
       nullptr, {}, {}, {}, true, "EXPR"},
      {"size", OptionType::kInt, "side of the optimized picture in pixels", 128, {}, 8.0, 4096.0},
      {"diversity", OptionType::kFloat, "weight of Lucid's diversity penalty across a batch", 0.0,
       {}, 0.0, 1e9},
  };
  for (auto& o : OptimizationOptions({})) options.push_back(o);
  TechniqueInfo info{"featurevis",
                     "feature visualization: a picture optimized to excite a channel, neuron, "
                     "layer, class or direction (Lucid)",
                     options, RunFeaturevis};
  info.kind = JobKind::kGenerate;
  return info;
}

}  // namespace netlens
