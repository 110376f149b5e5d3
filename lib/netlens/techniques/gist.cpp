// gist: one overview of a model on an image. A header row (the image, the top-5 predictions,
// guided backprop, integrated gradients or SmoothGrad, occlusion, the neuron groups of the last
// sampled layer) and one row per sampled layer (Grad-CAM, guided Grad-CAM, the mean activation,
// the top channels' activation maps), as one labelled figure, raw arrays and pictures of every
// map, and an animation of guided Grad-CAM from the first to the last sampled layer.
//
// Every sampled layer's activation and gradient come from ONE forward and ONE backward pass
// through the lens; guided backprop adds a second pair; the attribution and occlusion are the
// integrated-gradients (or smoothgrad) and occlusion techniques themselves, run with the options
// gist gives them. Each stage's cost is logged and recorded in the manifest.
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <filesystem>
#include <cstdio>
#include <set>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/image/figure.h"
#include "netlens/image/render.h"
#include "netlens/model/layout.h"
#include "netlens/techniques/cam.h"
#include "netlens/techniques/common.h"
#include "netlens/techniques/compose.h"
#include "netlens/techniques/neuron_groups.h"
#include "netlens/techniques/overview_family.h"
#include "netlens/techniques/rectifier_report.h"

namespace netlens {

namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string out;
  for (size_t i = 1; i < shape.size(); ++i) out += (i > 1 ? "x" : "") + std::to_string(shape[i]);
  return out;
}

// The layers gist shows: --layers (resolved, in forward order), or --layer-count of the
// convolutions spread evenly in forward order (every one with --all). Only layers with spatial
// positions (model/layout.h: N x C x h x w, channels-last or tokens; h*w > 1) qualify. On a
// transformer without --layers: every candidate of TransformerCamCandidates, sampled after the
// pass (SampleTransformerRows).
std::vector<std::string> GistLayers(Model& model, const Params& p, bool* transformer) {
  Lens& lens = model.lens();
  *transformer = false;
  if (!p.IsSet("layers")) {
    std::vector<std::string> candidates = TransformerCamCandidates(model);
    if (!candidates.empty()) {
      *transformer = true;
      return candidates;
    }
  }
  std::vector<const LayerInfo*> spatial, convs;
  for (const auto& info : lens.layers()) {
    if (!info.capturable || info.shape.size() < 3) continue;
    const SpatialLayout layout = InferSpatialLayout(info.shape, model.meta().height, model.meta().width);
    if (!layout.spatial() || layout.h * layout.w <= 1) continue;
    spatial.push_back(&info);
    if (info.type == "Conv2d") convs.push_back(&info);
  }
  if (spatial.empty())
    throw UsageError("gist: the model has no capturable layer with a spatial output (N x C x h x w)");
  auto names = [&](const std::vector<const LayerInfo*>& infos) {
    std::vector<std::string> out;
    for (size_t i = 0; i < infos.size(); ++i) {
      if (infos.size() > 16 && i == 10) {
        out.push_back("... (" + std::to_string(infos.size() - 15) + " more)");
        i = infos.size() - 5;
      }
      out.push_back(infos[i]->path);
    }
    return Join(out, ", ");
  };
  std::vector<const LayerInfo*> chosen;
  if (p.IsSet("layers")) {
    for (const auto& name : p.Strs("layers")) {
      const LayerInfo& info = lens.Info(lens.Resolve(name));
      const bool ok = std::find(spatial.begin(), spatial.end(), &info) != spatial.end();
      if (!ok)
        throw UsageError("gist: layer " + Quote(name) + " has output shape " +
                         (info.shape.empty() ? std::string("(unknown)") : c10::str(c10::IntArrayRef(info.shape))) +
                         ", without spatial positions; gist shows layers with N x C x h x w, channels-last or token output: " +
                         names(spatial));
      if (std::find(chosen.begin(), chosen.end(), &info) == chosen.end()) chosen.push_back(&info);
    }
    std::sort(chosen.begin(), chosen.end(),
              [](const LayerInfo* a, const LayerInfo* b) { return a->order < b->order; });
  } else {
    const auto& pool = convs.empty() ? spatial : convs;
    const int64_t count = p.Bool("all") ? static_cast<int64_t>(pool.size())
                                        : std::min<int64_t>(p.Int("layer_count"), pool.size());
    for (int64_t i = 0; i < count; ++i) {
      const size_t at = count == 1 ? pool.size() - 1
                                   : static_cast<size_t>(std::llround(static_cast<double>(i) * (pool.size() - 1) / (count - 1)));
      if (chosen.empty() || chosen.back() != pool[at]) chosen.push_back(pool[at]);
    }
    Log().info("gist: {} of {} {} in forward order: {}", chosen.size(), pool.size(),
               convs.empty() ? "spatial layers" : "convolutions", names(chosen));
  }
  std::vector<std::string> paths;
  for (const auto* info : chosen) paths.push_back(info->path);
  return paths;
}

// The gray view of an input attribution: sum |g| over channels, outlier-clipped (Captum's).
cv::Mat Magnitude(const torch::Tensor& chw, double outlier_percent) {
  return GrayImage(NormalizeAbs(chw.detach().to(torch::kCPU, torch::kFloat64).abs().sum(0), outlier_percent));
}

cv::Mat CamPicture(const torch::Tensor& hw, const cv::Mat& display) {
  return Overlay(display, HeatImage(CamToDisplay(hw, display, false)));
}

std::string Percent(double p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100 * p);
  return buf;
}

// The lens' smooth-activation rules switched on (when `on`) for a scope, then as they were.
class SmoothRulesScope {
 public:
  SmoothRulesScope(Lens& lens, bool on) : lens_(lens), was_(lens.SmoothActivationRules()) {
    lens_.SetSmoothActivationRules(was_ || on);
  }
  ~SmoothRulesScope() { lens_.SetSmoothActivationRules(was_); }
  SmoothRulesScope(const SmoothRulesScope&) = delete;
  SmoothRulesScope& operator=(const SmoothRulesScope&) = delete;

 private:
  Lens& lens_;
  bool was_;
};

// The rows of a transformer's gist, from its candidate norms after the pass: the first norm of each
// block (the first candidate under each parent module: ViT's ln_1, Swin's norm1) whose patch
// positions get a gradient (ViT's last norm passes only the class token), --layer-count of them
// spread evenly, the deepest always shown (every one with --all). Indices into `layers`.
std::vector<size_t> TransformerRows(const Params& p, const std::vector<std::string>& layers,
                                    const std::vector<torch::Tensor>& grads) {
  std::vector<size_t> pool;
  std::set<std::string> parents;
  for (size_t i = 0; i < layers.size(); ++i) {
    const size_t dot = layers[i].rfind('.');
    if (!parents.insert(dot == std::string::npos ? std::string() : layers[i].substr(0, dot)).second) continue;
    if (grads[i].abs().max().item<double>() > 0) pool.push_back(i);
  }
  if (pool.empty()) pool.push_back(layers.size() - 1);
  const int64_t count = p.Bool("all") ? static_cast<int64_t>(pool.size()) : std::min<int64_t>(p.Int("layer_count"), pool.size());
  std::vector<size_t> chosen;
  for (int64_t i = 0; i < count; ++i) {
    const size_t at = count == 1 ? pool.size() - 1
                                 : static_cast<size_t>(std::llround(static_cast<double>(i) * (pool.size() - 1) / (count - 1)));
    if (chosen.empty() || chosen.back() != pool[at]) chosen.push_back(pool[at]);
  }
  return chosen;
}

std::vector<Artifact> RunGist(TechniqueContext& ctx) {
  const Params& p = ctx.params;
  Model& model = ctx.model;
  const torch::Tensor& x = ctx.input.tensor;
  const cv::Mat& display = ctx.input.display;
  StageTimer timer;
  bool transformer = false;
  std::vector<std::string> layers = GistLayers(model, p, &transformer);
  const int64_t top_k = p.Int("top_channels");

  // One forward + one backward: every sampled layer's activation and gradient, read as
  // N x C x h x w through the layer's layout.
  const Gradients vanilla = TargetGradients(model, x, ctx.target, layers, BackwardRule::kVanilla,
                                            /*input_grad=*/false);
  std::vector<torch::Tensor> acts, grads;
  for (size_t i = 0; i < layers.size(); ++i) {
    const SpatialLayout layout = LayerLayout(ctx, "gist", layers[i], vanilla.activations[i], transformer);
    acts.push_back(ToSpatial(vanilla.activations[i], layout));
    grads.push_back(ToSpatial(vanilla.layer_grads[i], layout));
  }
  if (transformer) {
    const std::vector<size_t> rows = TransformerRows(p, layers, grads);
    std::vector<std::string> chosen;
    std::vector<torch::Tensor> chosen_acts, chosen_grads;
    for (size_t i : rows) {
      chosen.push_back(layers[i]);
      chosen_acts.push_back(acts[i]);
      chosen_grads.push_back(grads[i]);
      LayerLayout(ctx, "gist", layers[i], vanilla.activations[i]);  // logged and recorded for the rows shown
    }
    Log().info("gist: the model is a transformer: {} of its blocks' first norms whose patches reach the target: {}",
               chosen.size(), Join(chosen, ", "));
    layers = chosen, acts = chosen_acts, grads = chosen_grads;
  }
  const double layers_ms = timer.Stage("gist: activations and gradients at " + std::to_string(layers.size()) +
                                       " layers (one pass)");
  // On a model without ReLU-like activations (SiLU, GELU, Hardswish only) the guided rule would
  // change nothing and the guided panels would repeat the vanilla gradient: gist takes netlens'
  // generalization of the rule there (--smooth-activations) unless the option was given, and says so.
  const ActivationCensus census = ActivationsOf(model);
  const bool implied = !p.IsSet("smooth_activations") && !model.lens().SmoothActivationRules() &&
                       census.Rectifiers() == 0 && census.Others() > 0;
  if (implied)
    Log().info("gist: the model has no ReLU-like activation, so guided backprop applies netlens' generalization "
               "of its rule to the others (--smooth-activations implied; --smooth-activations=false for the "
               "plain rule, which equals the vanilla gradient here)");
  Gradients guided;
  {
    SmoothRulesScope scope(model.lens(), implied);  // the model serves a batch's later jobs as loaded
    guided = TargetGradients(model, x, ctx.target, {}, BackwardRule::kGuided);
    ctx.metrics["activations"] = RectifierReport(model, BackwardRule::kGuided);
  }
  if (implied) ctx.metrics["activations"]["implied_smooth_activations"] = true;
  const double guided_ms = timer.Stage("gist: guided backprop");
  const std::string attribution = p.Str("attribution");
  std::vector<Artifact> attr = attribution == "integrated-gradients"
      ? RunComposed(ctx, "integrated-gradients", {{"steps", p.Int("steps")}, {"batch_size", p.Int("batch_size")}},
                    "integrated_gradients")
      : RunComposed(ctx, "smoothgrad", {{"samples", p.Int("steps")}, {"batch_size", p.Int("batch_size")}},
                    "smoothgrad");
  const double attribution_ms = timer.Stage("gist: " + attribution);
  std::vector<Artifact> occlusion;
  if (p.Int("occlusion_grid") > 0) {
    // A grid of G x G half-overlapping windows: window 2 * side / (G + 1), stride half of it.
    const int64_t grid = p.Int("occlusion_grid");
    const int64_t h = x.size(2), w = x.size(3);
    const int64_t wh = std::max<int64_t>(1, 2 * h / (grid + 1)), ww = std::max<int64_t>(1, 2 * w / (grid + 1));
    occlusion = RunComposed(ctx, "occlusion",
                            {{"window", {wh, ww}}, {"stride", {std::max<int64_t>(1, wh / 2), std::max<int64_t>(1, ww / 2)}},
                             {"batch_size", p.Int("batch_size")}},
                            "occlusion");
  }
  const double occlusion_ms = timer.Stage("gist: occlusion");

  // Softmax of the clean pass for the predictions chart.
  const torch::Tensor probs = torch::softmax(vanilla.output.detach().to(torch::kCPU, torch::kFloat64), 1)[0];
  const auto top = probs.topk(std::min<int64_t>(5, probs.size(0)));
  std::vector<std::string> top_labels;
  std::vector<double> top_probs;
  for (int64_t i = 0; i < std::get<1>(top).size(0); ++i) {
    top_labels.push_back(model.Label(std::get<1>(top)[i].item<int64_t>()));
    top_probs.push_back(std::get<0>(top)[i].item<double>());
  }

  std::vector<Artifact> out;
  Artifact g{"guided", guided.input_grad};
  out.push_back(g);
  for (auto& a : attr)
    if (a.kind == Artifact::Kind::kInputAttribution) out.push_back(a);
  for (auto& a : occlusion)
    if (a.kind == Artifact::Kind::kInputAttribution) out.push_back(a);

  const double outlier = p.Float("outlier_percent");
  FigureSpec figure;
  figure.title = "gist of " + model.meta().name + " on " +
                 (ctx.input.path.empty() ? std::string("the input") : std::filesystem::path(ctx.input.path).filename().string());
  figure.subtitle = "target: " + model.Label(ctx.target) + " (" + std::to_string(ctx.target) + ", p " +
                    Percent(probs[ctx.target].item<double>()) + ")   layers in forward order, " +
                    "Grad-CAM and channels ranked for this target";
  FigureRow header{"input", c10::str(x.size(2), "x", x.size(3)), {}};
  header.cells.push_back({"image", display});
  header.cells.push_back({"top-5 predictions", BarChart(top_labels, top_probs, 220, 220)});
  header.cells.push_back({"guided backprop", Magnitude(guided.input_grad[0], outlier)});
  if (!attr.empty()) header.cells.push_back({attribution, AttributionHeatmap(attr[0].tensor[0], display, outlier)});
  if (!occlusion.empty()) header.cells.push_back({"occlusion", AttributionHeatmap(occlusion[0].tensor[0], display, outlier)});

  // Per layer: Grad-CAM, guided Grad-CAM, mean activation, top channels by their share of the CAM.
  Json layer_metrics = Json::array();
  std::vector<cv::Mat> frames;
  for (size_t i = 0; i < layers.size(); ++i) {
    const torch::Tensor& act = acts[i];
    const torch::Tensor& grad = grads[i];
    const torch::Tensor cam = GradCam(act, grad);
    const torch::Tensor up = ResizeMap(cam.detach()[0][0].clamp_min(0), x.size(2), x.size(3), true);
    Artifact gc{"gradcam", cam, Artifact::Kind::kLayerMap, layers[i]};
    Artifact ggc{"guided_gradcam", guided.input_grad * up.view({1, 1, x.size(2), x.size(3)}).to(x.scalar_type()),
                 Artifact::Kind::kInputAttribution, layers[i]};
    const torch::Tensor mean = act.mean(1, true);
    Artifact ma{"activation", mean, Artifact::Kind::kLayerMap, layers[i]};
    // Channel k's share of the CAM: w_k * sum_ij A_k (w_k = mean gradient, Grad-CAM's weight).
    const torch::Tensor weights = grad.detach()[0].mean({1, 2});
    const torch::Tensor share = (weights * act.detach()[0].sum({1, 2})).to(torch::kCPU, torch::kFloat64);
    const auto top_channels = std::get<1>(share.topk(std::min<int64_t>(top_k, share.size(0))));
    FigureRow row{layers[i], ShapeText(act.sizes().vec()), {}};
    const cv::Mat cam_view = CamPicture(cam[0][0], display);
    const cv::Mat ggc_view = Magnitude(ggc.tensor[0], outlier);
    row.cells.push_back({"Grad-CAM", cam_view});
    row.cells.push_back({"guided Grad-CAM", ggc_view});
    row.cells.push_back({"mean activation", CamPicture(mean[0][0], display)});
    Json channels = Json::array();
    std::vector<int64_t> indices;
    for (int64_t j = 0; j < top_channels.size(0); ++j) {
      const int64_t c = top_channels[j].item<int64_t>();
      indices.push_back(c);
      channels.push_back({{"channel", c}, {"share", share[c].item<double>()}});
      row.cells.push_back({"channel " + std::to_string(c), CamPicture(act[0][c], display)});
    }
    Artifact tc{"top_channels", act.index_select(1, torch::tensor(indices, torch::kLong).to(act.device())),
                Artifact::Kind::kRawOnly, layers[i]};
    layer_metrics.push_back({{"layer", layers[i]}, {"shape", act.sizes().vec()}, {"top_channels", channels}});
    figure.rows.push_back(std::move(row));
    out.push_back(gc);
    out.push_back(ggc);
    out.push_back(ma);
    out.push_back(tc);
    cv::Mat pair;
    cv::hconcat(cam_view, ggc_view, pair);
    const int frame = static_cast<int>(p.Int("frame_size"));  // each map's height in the frame
    if (pair.rows != frame) {
      const double f = static_cast<double>(frame) / pair.rows;
      cv::resize(pair, pair, cv::Size(std::max(1, static_cast<int>(pair.cols * f)), frame), 0, 0,
                 f >= 2 ? cv::INTER_NEAREST : cv::INTER_AREA);  // small inputs (28 x 28) stay sharp
    }
    // Left Grad-CAM, right guided Grad-CAM (docs/techniques.md); the caption names the layer.
    frames.push_back(Captioned(pair, "layer " + std::to_string(i + 1) + "/" + std::to_string(layers.size()) +
                                         ": " + layers[i]));
  }
  const double layers_render_ms = timer.Stage("gist: layer maps");

  // Neuron groups of the last sampled layer.
  if (p.Int("groups") > 0) {
    const torch::Tensor& act = acts.back();
    NmfOptions nmf;
    nmf.components = std::min<int64_t>(p.Int("groups"), std::min(act.size(1), act.size(2) * act.size(3)));
    nmf.seed = static_cast<uint64_t>(p.Int("seed"));
    const NeuronGroups groups = FactorizeActivation(act, grads.back(), nmf);
    const cv::Mat groups_view = GroupsPicture(groups.maps, display);
    header.cells.push_back({"groups at " + layers.back(), groups_view});
    Artifact gp{"groups", PictureTensor(groups_view).unsqueeze(0), Artifact::Kind::kPicture, layers.back()};
    out.push_back(gp);
    out.push_back({"group_maps", groups.maps.unsqueeze(0).to(x.scalar_type()), Artifact::Kind::kRawOnly, layers.back()});
    ctx.metrics["groups"] = {{"layer", layers.back()}, {"count", nmf.components},
                             {"attribution", groups.attribution},
                             {"reconstruction_error", groups.errors.empty() ? 1.0 : groups.errors.back()}};
  }
  figure.rows.insert(figure.rows.begin(), header);
  figure.color_bar = true;
  out.push_back({"gist", FigureTensor(RenderFigure(figure)), Artifact::Kind::kFigure});
  Artifact anim{"layers", torch::Tensor(), Artifact::Kind::kAnimation};
  std::vector<torch::Tensor> frame_tensors;
  for (const auto& f : frames) frame_tensors.push_back(PictureTensor(f).unsqueeze(0));
  anim.tensor = torch::stack(frame_tensors);
  anim.frame_delay_cs = static_cast<int>(std::max<int64_t>(1, p.Int("frame_ms") / 10));
  out.push_back(anim);
  const double figure_ms = timer.Stage("gist: figure and animation");
  ctx.metrics["layers"] = layer_metrics;
  ctx.metrics["timings_ms"] = {{"layers_pass", layers_ms}, {"guided", guided_ms}, {"attribution", attribution_ms},
                               {"occlusion", occlusion_ms}, {"layer_maps", layers_render_ms}, {"figure", figure_ms}};
  Log().info("gist: {} layers in one pass {:.0f} ms; guided {:.0f} ms, {} {:.0f} ms, occlusion {:.0f} ms, "
             "figures {:.0f} ms", layers.size(), layers_ms, guided_ms, attribution, attribution_ms,
             occlusion_ms, layers_render_ms + figure_ms);
  return out;
}

}  // namespace

TechniqueInfo GistTechnique() {
  OptionTable options{
      {"layers", OptionType::kStringList, "layers to show (default: --layer-count convolutions spread evenly)"},
      {"layer_count", OptionType::kInt, "how many layers to sample in forward order", 6, {}, 1.0, 64.0},
      {"all", OptionType::kBool, "show every convolution", false},
      {"top_channels", OptionType::kInt, "channels shown per layer, ranked by their share of the Grad-CAM", 4,
       {}, 0.0, 16.0},
      {"attribution", OptionType::kString, "input attribution of the header row", "integrated-gradients",
       {"integrated-gradients", "smoothgrad"}},
      {"steps", OptionType::kInt, "integrated-gradients steps or smoothgrad samples", 8, {}, 1.0, 1000.0},
      {"occlusion_grid", OptionType::kInt,
       "occlusion with G x G half-overlapping windows (224 pixels, 4: 89-pixel windows; 0: none)", 4, {}, 0.0, 64.0},
      {"groups", OptionType::kInt, "neuron groups (NMF) of the last layer (0: none)", 6, {}, 0.0, 32.0},
      {"seed", OptionType::kInt, "seed of the factorization", 0, {}, 0.0, 2147483647.0},
      {"frame_ms", OptionType::kInt, "animation: milliseconds per layer", 800, {}, 10.0, 10000.0},
      {"frame_size", OptionType::kInt, "animation: height of each map in pixels", 224, {}, 32.0, 2048.0},
      {"batch_size", OptionType::kInt, "inputs per batched pass (attribution, occlusion)", 16, {}, 1.0, 4096.0},
  };
  TechniqueInfo info{"gist", "overview: predictions, attributions and a sample of layers in one figure, "
                             "animation and report", options, RunGist, BatchPass::kForwardBackward};
  info.writes_report = true;
  return info;
}

}  // namespace netlens
