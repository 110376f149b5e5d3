// DeepDream (Mordvintsev, Olah & Tyka 2015, as in TensorFlow's tutorial): gradient ascent on a
// layer objective (mean of squared activations by default, or any --objective) starting from the
// image itself, over an image pyramid (octaves, each --octave-scale larger, the detail found at
// one octave carried to the next), with a random shift (jitter) before every step and the
// gradient normalized by its mean absolute value. Works on the image at its own resolution
// (longer side capped by --max-side), not on the model's input size.
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/optvis/objective.h"
#include "netlens/techniques/optvis_family.h"
#include "netlens/techniques/optvis_options.h"

namespace netlens {

namespace {
using optvis::AnimationFrame;
using optvis::Resized;

std::vector<Artifact> RunDeepDream(TechniqueContext& ctx) {
  const Params& p = ctx.params;
  Model& model = ctx.model;
  const std::string text = p.IsSet("objective") ? p.Str("objective") : p.Str("layer");
  optvis::Objective objective = optvis::ParseObjective(text, model);
  if (objective.batch != 1) throw UsageError("deepdream optimizes one image; use one channel, not a range");

  cv::Mat bgr = ctx.input.original;
  const int64_t max_side = p.Int("max_side");
  if (std::max(bgr.rows, bgr.cols) > max_side) {
    const double f = static_cast<double>(max_side) / std::max(bgr.rows, bgr.cols);
    cv::resize(bgr, bgr, cv::Size(), f, f, cv::INTER_AREA);
    Log().info("deepdream: the image is scaled to {}x{} (--max-side {})", bgr.cols, bgr.rows, max_side);
  }
  CheckOptimizationMemory(p, model, "deepdream", nullptr, 1, bgr.rows, bgr.cols, 0, 0, "--max-side");
  const torch::Tensor base = optvis::PictureFromBgr(bgr, model.meta(), model.device(), model.dtype());
  const int64_t h = base.size(2), w = base.size(3);
  const int64_t octaves = p.Int("octaves"), steps = p.Int("steps"), jitter = p.Int("jitter");
  const double octave_scale = p.Float("octave_scale"), step_size = p.Float("step_size");
  std::mt19937_64 rng(static_cast<uint64_t>(p.Int("seed")));
  auto shift = [&]() {
    return jitter > 0 ? static_cast<int64_t>(rng() % static_cast<uint64_t>(2 * jitter + 1)) - jitter : 0;
  };

  torch::Tensor detail = torch::zeros_like(base);
  torch::Tensor image;
  std::vector<torch::Tensor> frames{AnimationFrame(base)};
  std::vector<double> curve;
  const int64_t frame_every = std::max<int64_t>(1, octaves * steps / std::max<int64_t>(1, p.Int("frames")));
  int64_t done = 0;
  for (int64_t o = 0; o < octaves; ++o) {
    const double f = std::pow(octave_scale, static_cast<double>(o - (octaves - 1)));
    const int64_t oh = std::max<int64_t>(8, std::lround(h * f)), ow = std::max<int64_t>(8, std::lround(w * f));
    const torch::Tensor octave_base = Resized(base, oh, ow);
    image = (octave_base + Resized(detail, oh, ow)).detach();
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t dy = shift(), dx = shift();
      torch::Tensor x = torch::roll(image, {dy, dx}, {2, 3}).detach().requires_grad_(true);
      const Lens::Capture capture = model.lens().Forward(ToModelInputOf(x, model), objective.layers,
                                                         BackwardRule::kVanilla, objective.needs_logits);
      const torch::Tensor value = objective.Evaluate(capture.activations, capture.output, x).sum();
      const double v = value.item<double>();
      if (!std::isfinite(v)) throw RuntimeError("deepdream: the objective became NaN or infinite at octave " +
                                                std::to_string(o + 1) + ", step " + std::to_string(s + 1));
      if (!value.requires_grad()) throw UsageError("deepdream: the objective " + Quote(text) + " does not depend on the image");
      torch::Tensor g = torch::autograd::grad({value}, {x})[0];
      g = torch::roll(g, {-dy, -dx}, {2, 3});
      const double scale = g.abs().mean().item<double>();
      if (scale > 0) image = (image + step_size / scale * g).clamp(0, 1).detach();
      curve.push_back(v);
      if (++done % frame_every == 0) frames.push_back(AnimationFrame(Resized(image, h, w)));
    }
    detail = image - octave_base;
    Log().info("deepdream: octave {}/{} at {}x{}, objective {:.4g}", o + 1, octaves, ow, oh, curve.back());
  }
  image = Resized(image, h, w).clamp(0, 1);
  ctx.metrics["objective_curve"] = curve;
  ctx.metrics["objective_first"] = curve.front();
  ctx.metrics["objective_last"] = curve.back();

  Artifact dream;
  dream.name = "deepdream";
  dream.kind = Artifact::Kind::kPicture;
  dream.tensor = image.to(torch::kCPU);
  dream.captions = {"deepdream " + text};
  std::vector<Artifact> out{dream};
  if (frames.size() > 1) {
    Artifact anim;
    anim.name = "deepdream_steps";
    anim.kind = Artifact::Kind::kAnimation;
    anim.tensor = torch::stack(frames);
    out.push_back(anim);
  }
  return out;
}

}  // namespace

TechniqueInfo DeepDreamTechnique() {
  OptionTable options{
      {"layer", OptionType::kString, "layer whose activations are amplified (mean of squares)",
       "last-conv", {}, {}, {}, false, "LAYER"},
      {"objective", OptionType::kString, "instead of --layer: any featurevis objective", nullptr,
       {}, {}, {}, false, "EXPR"},
      {"octaves", OptionType::kInt, "image pyramid levels", 4, {}, 1.0, 12.0},
      {"octave_scale", OptionType::kFloat, "size ratio between octaves", 1.4, {}, 1.01, 4.0},
      {"steps", OptionType::kInt, "gradient steps per octave", 10, {}, 1.0, 10000.0},
      {"step_size", OptionType::kFloat, "step size, in units of [0, 1] pixel values", 0.01, {}, 1e-6, 1.0},
      {"jitter", OptionType::kInt, "random shift in pixels before each step", 32, {}, 0.0, 512.0},
      {"max_side", OptionType::kInt, "scale larger images down to this longer side", 1024, {}, 16.0, 16384.0},
      {"frames", OptionType::kInt, "frames of the animated GIF (0: no GIF)", 40, {}, 0.0, 1000.0},
      {"seed", OptionType::kInt, "seed of the shifts", 0, {}, 0.0, 4294967295.0},
  };
  TechniqueInfo info{"deepdream", "DeepDream: amplify what a layer sees in an image, over octaves",
                     options, RunDeepDream};
  info.kind = JobKind::kTransform;
  return info;
}

}  // namespace netlens
