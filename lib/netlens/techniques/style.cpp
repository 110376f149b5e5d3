// Neural style transfer (Gatys, Ecker & Bethge, CVPR 2016) on the image-optimization engine: a
// picture that keeps the content image's features at the content layers while taking the style
// images' statistics at the style layers (optvis/style.h: gram, moments, cross, sliced-wasserstein).
//
// Losses are normalized so that weights mean the same on every model and metric (netlens' own
// convention; Gatys weights absolute losses, e.g. 1 and 1e6): the content loss is divided by the
// content loss of the (first) style image itself, each style loss by its value on the content
// image, so a start from the content scores 0 + (number of style layers) and a weight of 1 says
// "as far as the style image is from the content". Total = content_weight * content +
// sum_i style_weight_i * sum_l style_il + tv * TV. Defaults as the classic tools: the picture's
// pixels, starting from the content, L-BFGS, 300 steps; the longer side at --size, any aspect
// ratio (the feature extraction is fully convolutional; the model's own input size is not forced).
#include <opencv2/imgproc.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <set>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/image/image_io.h"
#include "netlens/optvis/style.h"
#include "netlens/techniques/optvis_family.h"
#include "netlens/techniques/optvis_options.h"

namespace netlens {

namespace fs = std::filesystem;

torch::Tensor LoadStylePicture(const std::string& path, int64_t longer, const Model& model) {
  cv::Mat bgr = ReadImage(path);
  const double f = static_cast<double>(longer) / std::max(bgr.rows, bgr.cols);
  cv::resize(bgr, bgr, cv::Size(std::max(8, static_cast<int>(std::lround(bgr.cols * f))),
                                std::max(8, static_cast<int>(std::lround(bgr.rows * f)))),
             0, 0, f < 1 ? cv::INTER_AREA : cv::INTER_CUBIC);
  return optvis::PictureFromBgr(bgr, model.meta(), model.device(), model.dtype());
}

namespace {

// Symmetric square root (and inverse) of a 3 x 3 covariance.
torch::Tensor SymmetricPower(const torch::Tensor& cov, double power) {
  const auto [values, vectors] = torch::linalg_eigh(cov, "L");
  return torch::matmul(vectors * values.clamp_min(1e-8).pow(power).unsqueeze(0), vectors.t());
}

// Gatys et al. 2017 ("Controlling Perceptual Factors in Neural Style Transfer"), colour
// histogram matching: the style picture's colours mapped linearly so that their mean and
// covariance equal the content's.
torch::Tensor MatchColours(const torch::Tensor& style, const torch::Tensor& content) {
  if (style.size(1) != 3) return style;
  const auto stats = [](const torch::Tensor& p) {
    const torch::Tensor flat = p[0].reshape({3, -1}).to(torch::kFloat64);
    const torch::Tensor mean = flat.mean(1, true);
    const torch::Tensor centred = flat - mean;
    return std::make_pair(mean, torch::matmul(centred, centred.t()) / flat.size(1));
  };
  const auto [ms, cs] = stats(style);
  const auto [mc, cc] = stats(content);
  const torch::Tensor a = torch::matmul(SymmetricPower(cc, 0.5), SymmetricPower(cs, -0.5));
  const torch::Tensor flat = style[0].reshape({3, -1}).to(torch::kFloat64);
  return (torch::matmul(a, flat - ms) + mc).clamp(0, 1).reshape(style.sizes()).to(style.scalar_type());
}

}  // namespace

// Default layers from forward order: VGG-19's classic Gatys set when the model has VGG-19's
// convolutions (the PyTorch tutorial's: the convolutions' own outputs); otherwise five convolutions
// spread over the first 70% of them for style and the one at 55% for content, each taken after
// its activation where an activation module follows it (Gatys' Caffe layers were rectified
// responses: Caffe's ReLU works in place). Before rectified outputs were taken, SqueezeNet's style
// moved the picture less than half of the way to the painting (docs/performance.md, style
// defaults). Convolutions on a 1 x 1 map (squeeze-and-excitation's) have no texture and are not
// counted.
void DefaultStyleLayers(Model& model, std::vector<std::string>& content, std::vector<std::string>& style) {
  static const std::set<std::string> kActivations{"ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU",
                                                  "CELU", "GELU", "SiLU", "Hardswish", "Mish"};
  std::vector<std::string> convs, rectified;
  const auto& layers = model.lens().layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& l = layers[i];
    if (!(l.capturable && StartsWith(l.type, "Conv") && l.shape.size() == 4 && l.shape[2] * l.shape[3] > 1)) continue;
    convs.push_back(l.path);
    const bool activation_next = i + 1 < layers.size() && layers[i + 1].capturable &&
                                 kActivations.count(layers[i + 1].type) && layers[i + 1].shape == l.shape;
    rectified.push_back(activation_next ? layers[i + 1].path : l.path);
  }
  if (convs.empty()) throw UsageError("style: the model has no convolution with a spatial output; give --style-layer and --content-layer");
  const bool vgg19 = convs.size() == 16 && convs[0] == "features.0" && convs[8] == "features.19" &&
                     convs[12] == "features.28";
  if (content.empty()) content = {vgg19 ? "features.21" : rectified[static_cast<size_t>(std::lround(0.55 * (convs.size() - 1)))]};
  if (style.empty()) {
    if (vgg19) {
      style = {"features.0", "features.5", "features.10", "features.19", "features.28"};
    } else {
      for (int k = 0; k < 5; ++k) {
        const std::string l = rectified[static_cast<size_t>(std::lround(k * 0.7 * (convs.size() - 1) / 4))];
        if (style.empty() || style.back() != l) style.push_back(l);
      }
    }
  }
}

namespace {

std::vector<Artifact> RunStyle(TechniqueContext& ctx) {
  const Params& p = ctx.params;
  Model& model = ctx.model;
  std::vector<std::string> content_layers = p.IsSet("content_layer") ? p.Strs("content_layer") : std::vector<std::string>{};
  std::vector<std::string> style_layers = p.IsSet("style_layer") ? p.Strs("style_layer") : std::vector<std::string>{};
  const bool defaults = content_layers.empty() || style_layers.empty();
  DefaultStyleLayers(model, content_layers, style_layers);
  for (auto& l : content_layers) l = model.lens().Resolve(l);
  for (auto& l : style_layers) l = model.lens().Resolve(l);
  for (const auto& l : style_layers) {
    const auto& shape = model.lens().Info(l).shape;
    if (shape.size() != 4 || shape[2] * shape[3] < 2)
      throw UsageError("style layer " + Quote(l) + " has no spatial output (shape " + c10::str(c10::IntArrayRef(shape)) +
                       "); pick a convolutional layer (netlens inspect lists them)");
  }
  if (defaults) Log().info("style: content layer(s) {}; style layers {} (from forward order)",
                           Join(content_layers, ", "), Join(style_layers, ", "));
  const std::vector<std::string> styles = p.Strs("style");
  std::vector<double> weights = p.IsSet("style_weight") ? p.Floats("style_weight") : std::vector<double>(styles.size(), 1.0);
  if (weights.size() != styles.size())
    throw UsageError("--style-weight has " + std::to_string(weights.size()) + " value(s) for " +
                     std::to_string(styles.size()) + " style image(s); give one weight per image");
  const optvis::StyleMetric metric = optvis::ParseStyleMetric(p.Str("style_metric"));

  const int64_t size = p.Int("size");
  const torch::Tensor content = LoadStylePicture(p.Str("content"), size, model);
  const int64_t h = content.size(2), w = content.size(3);
  std::string names;
  for (const auto& s : styles) names += (names.empty() ? "" : "+") + fs::path(s).stem().string();
  // New random directions at every step make sliced-wasserstein's loss stochastic, which L-BFGS'
  // curvature estimates do not expect: Adam (at its own default step unless --lr) for this metric.
  const bool implied_adam = metric == optvis::StyleMetric::kSlicedWasserstein && !p.IsSet("optimizer");
  if (implied_adam)
    Log().info("style: sliced-wasserstein optimizes with Adam, lr {} (--optimizer lbfgs to override)",
               p.IsSet("lr") ? p.Float("lr") : DefaultLr("adam"));
  const optvis::OptimizeOptions oo = OptimizeOptionsFrom(p, "style " + names, implied_adam ? "adam" : "");
  CheckOptimizationMemory(p, model, "style", &oo, 1, h, w);
  std::vector<std::string> layers = content_layers;
  for (const auto& l : style_layers)
    if (std::find(layers.begin(), layers.end(), l) == layers.end()) layers.push_back(l);
  auto features = [&](const torch::Tensor& picture) {
    const auto acts = model.lens().Forward(ToModelInputOf(picture, model), layers, BackwardRule::kVanilla,
                                           /*with_output=*/false).activations;
    std::vector<torch::Tensor> c, s;
    for (const auto& l : content_layers) c.push_back(acts[std::find(layers.begin(), layers.end(), l) - layers.begin()]);
    for (const auto& l : style_layers) s.push_back(acts[std::find(layers.begin(), layers.end(), l) - layers.begin()]);
    return std::make_pair(c, s);
  };

  // Targets: the content's features; each style's statistics (colours matched with
  // --preserve-color); the normalizers.
  std::vector<torch::Tensor> style_pictures;
  std::vector<optvis::StyleTarget> targets;
  std::vector<torch::Tensor> content_targets;
  double content_ref = 0;
  std::vector<std::vector<double>> style_scales;  // per style image and layer: 1 / its loss at the content
  auto generator = at::detail::createCPUGenerator(static_cast<uint64_t>(p.Int("seed")));
  {
    torch::NoGradGuard no_grad;
    const auto [content_features, start_features] = features(content);
    content_targets = content_features;
    for (const auto& path : styles) {
      torch::Tensor s = LoadStylePicture(path, size, model);
      if (p.Bool("preserve_color")) s = MatchColours(s, content);
      style_pictures.push_back(s);
      targets.push_back(optvis::StyleStatistics(features(s).second, metric));
    }
    const auto ref = features(optvis::Resized(style_pictures[0], h, w)).first;
    for (size_t i = 0; i < ref.size(); ++i) content_ref += torch::mse_loss(ref[i], content_targets[i]).item<double>();
    for (const auto& t : targets) {
      auto g = generator;
      std::vector<double> r;
      for (const auto& l : optvis::StyleLosses(start_features, t, metric, g)) r.push_back(1 / std::max(l.item<double>(), 1e-12));
      style_scales.push_back(r);
    }
  }
  if (content_ref <= 0) content_ref = 1;

  const std::string init = p.Str("init");
  optvis::ParamOptions po = ParamOptionsFrom(p, model, 1, h, w);
  torch::Tensor start = content;
  if (init == "style") start = optvis::Resized(style_pictures[0], h, w);
  std::unique_ptr<optvis::ImageParam> param =
      init == "noise" ? std::make_unique<optvis::ImageParam>(po)
                      : std::make_unique<optvis::ImageParam>(po, start);
  if (init != "noise" && po.space == "fft") Log().info("style: --init {} starts in pixel space (the FFT start is noise only)", init);

  const double content_weight = p.Float("content_weight"), tv = p.Float("tv");
  Json curves{{"content", Json::array()}, {"style", Json::array()}, {"tv", Json::array()}};
  std::vector<std::vector<double>> last_style;
  // Each step's operations are few on purpose (each costs its launch and its backward node): the
  // normalizers and weights are folded into one scale per term.
  const auto value = [&](const torch::Tensor& picture) {
    const auto [c, s] = features(picture);
    torch::Tensor content_loss = torch::mse_loss(c[0], content_targets[0]);
    for (size_t i = 1; i < c.size(); ++i) content_loss = content_loss + torch::mse_loss(c[i], content_targets[i]);
    const double content_value = content_loss.item<double>() / content_ref;
    torch::Tensor total = content_loss * (content_weight / content_ref);
    double style_value = 0;
    last_style.clear();
    for (size_t k = 0; k < targets.size(); ++k) {
      const auto losses = optvis::StyleLosses(s, targets[k], metric, generator, style_scales[k]);
      std::vector<double> per_layer;
      for (const auto& n : losses) {
        per_layer.push_back(n.item<double>());
        style_value += weights[k] * per_layer.back();
        total = total + (weights[k] == 1 ? n : weights[k] * n);
      }
      last_style.push_back(per_layer);
    }
    double tv_value = 0;
    if (tv > 0) {
      const torch::Tensor t = optvis::TotalVariation(picture).sum();
      tv_value = t.item<double>();
      total = total + tv * t;
    }
    curves["content"].push_back(content_value);
    curves["style"].push_back(style_value);
    curves["tv"].push_back(tv_value);
    return (-total).reshape({1});
  };
  Log().info("style: {} in the style of {}, {}x{}, {} {} steps, metric {}", fs::path(p.Str("content")).filename().string(),
             names, w, h, oo.optimizer, p.Int("steps"), p.Str("style_metric"));
  const optvis::OptimizeResult result = optvis::Optimize(*param, value, oo);

  ctx.metrics["layers"] = {{"content", content_layers}, {"style", style_layers}};
  ctx.metrics["style_weights"] = weights;
  ctx.metrics["loss_curves"] = curves;
  ctx.metrics["content_reference"] = content_ref;
  if (!curves["style"].empty()) {
    ctx.metrics["content_loss_last"] = curves["content"].back();
    ctx.metrics["style_loss_first"] = curves["style"].front();
    ctx.metrics["style_loss_last"] = curves["style"].back();
    ctx.metrics["style_loss_per_layer_last"] = last_style;
    Log().info("style: content loss {:.4g}, style loss {:.4g} -> {:.4g} (normalized)", curves["content"].back().get<double>(),
               curves["style"].front().get<double>(), curves["style"].back().get<double>());
  }
  return OptimizationArtifacts(result, "style_" + names, {names}, ctx);
}

}  // namespace

TechniqueInfo StyleTechnique() {
  OptionTable options{
      {"content", OptionType::kString, "content image", nullptr, {}, {}, {}, true, "FILE", true},
      {"style", OptionType::kStringList, "style image(s)", nullptr, {}, {}, {}, true, "FILE", true},
      {"style_weight", OptionType::kFloatList, "weight of each style image (default 1 each)", nullptr, {}, 0.0, 1e9},
      {"content_weight", OptionType::kFloat, "weight of the content loss", 1.0, {}, 0.0, 1e9},
      {"content_layer", OptionType::kStringList, "content layer(s) (default: from forward order)", nullptr, {}, {}, {}, false, "LAYER"},
      {"style_layer", OptionType::kStringList, "style layers (default: from forward order)", nullptr, {}, {}, {}, false, "LAYER"},
      {"style_metric", OptionType::kString, "style statistics", "gram", {"gram", "moments", "cross", "sliced-wasserstein"}},
      {"init", OptionType::kString, "starting picture", "content", {"content", "noise", "style"}},
      {"size", OptionType::kInt, "longer side of the result in pixels", 384, {}, 16.0, 4096.0},
      {"tv", OptionType::kFloat, "weight of total variation", 0.0, {}, 0.0, 1e9},
      {"preserve_color", OptionType::kBool, "match the style images' colours to the content's first (mean and covariance)", false},
  };
  OptimizationDefaults defaults;
  defaults.steps = 300;
  defaults.transforms = "none";
  defaults.param = "pixel";
  defaults.valid = "clamp";
  defaults.optimizer = "lbfgs";
  defaults.frames = 30;
  for (auto& o : OptimizationOptions(defaults)) options.push_back(o);
  TechniqueInfo info{"style", "neural style transfer (Gatys): the content image in the style of others",
                     options, RunStyle};
  info.kind = JobKind::kStyle;
  return info;
}

}  // namespace netlens
