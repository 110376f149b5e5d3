// factorize: neuron groups of one layer ("The Building Blocks of Interpretability", Olah et al.
// 2018). The layer's spatial activations (h*w x C) are factorized by NMF into k groups; written:
// a colour-coded map of the groups over the image, each group's spatial map, the channel
// loadings, each group's attribution to the target (group direction x layer gradient), a feature
// visualization of each group's direction (the featurevis technique with a direction objective),
// and one figure of it all. The manifest gets the reconstruction error and every group's figures.
#include <cstdio>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/image/figure.h"
#include "netlens/image/render.h"
#include "netlens/techniques/common.h"
#include "netlens/techniques/neuron_groups.h"
#include "netlens/techniques/overview_family.h"
#include "netlens/techniques/compose.h"

namespace netlens {

namespace {

cv::Mat TensorToBgr(const torch::Tensor& chw01) { return ColorImage(chw01.to(torch::kCPU, torch::kFloat64)); }

// A feature visualization of each group's direction at `layer`, by the featurevis technique.
std::vector<torch::Tensor> VisualizeGroups(TechniqueContext& ctx, const std::string& layer,
                                           const torch::Tensor& loadings) {
  std::vector<torch::Tensor> pictures;
  for (int64_t g = 0; g < loadings.size(0); ++g) {
    std::string vector;
    for (int64_t c = 0; c < loadings.size(1); ++c) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%s%.6g", c ? "," : "", loadings[g][c].item<double>());
      vector += buf;
    }
    Log().info("factorize: feature visualization of group {} ({} steps)", g, ctx.params.Int("visualize_steps"));
    const std::vector<Artifact> artifacts = RunComposed(
        ctx, "featurevis",
        {{"objective", "direction(" + layer + ",[" + vector + "])"}, {"steps", ctx.params.Int("visualize_steps")},
         {"size", ctx.params.Int("visualize_size")}, {"seed", ctx.params.Int("seed")}, {"progress", "none"}},
        "");
    for (const auto& a : artifacts)
      if (a.kind == Artifact::Kind::kPicture) {  // the first: the final picture
        pictures.push_back(a.tensor[0].detach().to(torch::kCPU, torch::kFloat32));
        break;
      }
  }
  return pictures;
}

std::vector<Artifact> RunFactorize(TechniqueContext& ctx) {
  const Params& p = ctx.params;
  Model& model = ctx.model;
  const std::string layer = ResolveLayerOrTransformerDefault(ctx, "factorize");
  const Gradients grads = TargetGradients(model, ctx.input.tensor, ctx.target, {layer},
                                          BackwardRule::kVanilla, /*input_grad=*/false);
  // A token or channels-last layer through its layout (its patches as the positions; prefix
  // tokens left out); one without a grid is refused, naming --token-layout.
  const SpatialLayout layout = LayerLayout(ctx, "factorize", layer, grads.activations[0]);
  const torch::Tensor act = ToSpatial(grads.activations[0], layout);
  if (act.size(2) * act.size(3) < 2)
    throw UsageError("factorize: layer " + Quote(layer) + " has output shape " + c10::str(grads.activations[0].sizes()) +
                     ", one position; neuron groups need several (a convolution, block or token layer; "
                     "netlens inspect lists the shapes)");
  NmfOptions nmf;
  nmf.components = p.Int("groups");
  nmf.iterations = p.Int("iterations");
  nmf.seed = static_cast<uint64_t>(p.Int("seed"));
  const NeuronGroups groups = FactorizeActivation(act, ToSpatial(grads.layer_grads[0], layout), nmf);
  const int64_t k = groups.maps.size(0);
  const cv::Mat& display = ctx.input.display;

  std::vector<torch::Tensor> pictures;
  if (p.Int("visualize_steps") > 0) pictures = VisualizeGroups(ctx, layer, groups.loadings);

  std::vector<Artifact> out;
  const cv::Mat map_view = GroupsPicture(groups.maps, display);
  const torch::Tensor map_tensor = PictureTensor(map_view).unsqueeze(0);
  out.push_back({"groups", map_tensor, Artifact::Kind::kPicture, layer});
  out.push_back({"group_loadings", groups.loadings.to(act.scalar_type()), Artifact::Kind::kRawOnly, layer});

  FigureSpec figure;
  figure.title = "neuron groups of " + layer + " (" + std::to_string(k) + ", NMF)";
  char err[64];
  std::snprintf(err, sizeof(err), "%.4f", groups.errors.empty() ? 1.0 : groups.errors.back());
  figure.subtitle = model.meta().name + ", target " + model.Label(ctx.target) + "; relative reconstruction error " + err;
  figure.rows.push_back({"all groups", "", {{"image", display}, {"groups", map_view}}});
  Json group_json = Json::array();
  for (int64_t g = 0; g < k; ++g) {
    Artifact m{"group" + std::to_string(g), groups.maps[g].view({1, 1, groups.maps.size(1), groups.maps.size(2)})
                                                .to(act.scalar_type()), Artifact::Kind::kLayerMap, layer};
    out.push_back(m);
    const torch::Tensor loads = groups.loadings[g];
    // The largest loadings by magnitude (a signed layer's directions have both signs).
    const auto top = loads.abs().topk(std::min<int64_t>(5, loads.size(0)));
    std::vector<std::string> names;
    std::vector<double> values;
    Json channels = Json::array();
    const double lmax = std::max(std::get<0>(top)[0].item<double>(), 1e-12);
    for (int64_t j = 0; j < std::get<1>(top).size(0); ++j) {
      const int64_t c = std::get<1>(top)[j].item<int64_t>();
      const double loading = loads[c].item<double>();
      names.push_back("channel " + std::to_string(c) + (groups.split_signs ? (loading < 0 ? " (-)" : " (+)") : ""));
      values.push_back(std::abs(loading) / lmax);
      channels.push_back({{"channel", c}, {"loading", loading}});
    }
    const double attribution = g < static_cast<int64_t>(groups.attribution.size()) ? groups.attribution[g] : 0;
    char note[64];
    std::snprintf(note, sizeof(note), "attribution %+.3g", attribution);
    FigureRow row{"group " + std::to_string(g), note, {}};
    cv::Mat swatch(display.rows, display.cols, CV_8UC3, GroupColor(g));
    row.cells.push_back({"colour", swatch});
    row.cells.push_back({"where it fires", Overlay(display, HeatImage(CamToDisplay(groups.maps[g], display, false)))});
    if (g < static_cast<int64_t>(pictures.size())) row.cells.push_back({"its direction, visualized", TensorToBgr(pictures[g])});
    row.cells.push_back({"top channels (loading)", BarChart(names, values, 220, 220)});
    figure.rows.push_back(row);
    group_json.push_back({{"group", g}, {"attribution", attribution}, {"top_channels", channels}});
  }
  if (!pictures.empty()) {
    Artifact vis{"group_featurevis", torch::stack(pictures), Artifact::Kind::kPicture, layer};
    for (int64_t g = 0; g < k; ++g) vis.captions.push_back("group " + std::to_string(g));
    out.push_back(vis);
  }
  out.push_back({"factorize", FigureTensor(RenderFigure(figure)), Artifact::Kind::kFigure, layer});
  ctx.metrics.update(Json{{"layer", layer}, {"groups", group_json}, {"iterations", static_cast<int64_t>(groups.errors.size())},
                 {"reconstruction_error", groups.errors.empty() ? 1.0 : groups.errors.back()},
                 {"negative_share", groups.negative_share}, {"split_signs", groups.split_signs}});
  return out;
}

}  // namespace

TechniqueInfo FactorizeTechnique() {
  OptionTable options{
      {"layer", OptionType::kString, "layer to factorize: a module path, conv-N or last-conv", "last-conv"},
      {"groups", OptionType::kInt, "number of neuron groups (NMF components)", 6, {}, 1.0, 64.0},
      {"iterations", OptionType::kInt, "NMF multiplicative-update iterations (at most)", 300, {}, 1.0, 100000.0},
      {"seed", OptionType::kInt, "seed of NMF's start and of the visualizations", 0, {}, 0.0, 2147483647.0},
      {"visualize_steps", OptionType::kInt, "featurevis steps per group direction (0: no visualization)", 64,
       {}, 0.0, 100000.0},
      {"visualize_size", OptionType::kInt, "featurevis picture size", 96, {}, 16.0, 1024.0},
      TokenLayoutOption(),
  };
  return {"factorize", "neuron groups: NMF of a layer's activations, with maps, loadings and attributions",
          options, RunFactorize};
}

}  // namespace netlens
