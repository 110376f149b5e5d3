// evaluate: how faithful each technique's map is on this model and image. For every technique
// in --techniques (run with its own defaults on the same image and target) and every metric in
// --metric, a score in the manifest (metrics.scores, which the run collects into scores.csv and
// a ranking table), the curves as raw arrays, and one chart per metric with every technique.
//
// Deletion / insertion (Petsiuk et al., "RISE", BMVC 2018): pixels are ranked by the map
// (input attributions: summed over channels; layer maps: ReLU, bilinear upsampling) and, in
// --steps equal fractions, removed from the image (set to 0 in the model's input space, RISE's
// substrate) or inserted into a blurred copy (RISE's Gaussian blur, kernel 11, sigma 5, zero
// padding). The target's softmax probability along the way is the curve; its area (RISE's
// trapezoid, normalized to [0, 1] on the x axis) the score: lower is better for deletion,
// higher for insertion. All steps run as batched forward passes without autograd.
//
// ROAD (Rong et al., ICML 2022): the most (MoRF) or least (LeRF) relevant 10%, 20%, .., 90% of
// the pixels are replaced by noisy linear imputation (road.cpp) instead of a constant, so the
// removal itself leaves no shape for the model to see; the score is pytorch-grad-cam's
// ROADCombined, (mean p(target) over LeRF - mean over MoRF) / 2: higher is better.
//
// Infidelity and max-sensitivity: Captum's captum.metrics definitions (see evaluate.h).
//
// Model randomization (Adebayo et al., NeurIPS 2018): the model's layers are re-drawn from the
// output back to the input, one more at each step (sanity.cpp), each technique's map recomputed
// for the same target and compared with the original: Spearman rank correlation of the absolute
// maps and SSIM of the maps scaled to [0, 1]. The score is the rank correlation averaged over the
// cascade's steps, by default the top three layers (lower is better: the map depends on what the
// model learned); a map that keeps 0.5 or more fails the check, and the log says so. The whole
// cascade is not the default: with PyTorch's initialization the activations die out some layers
// down and every map goes flat, so the average would be ~0 for all. The model is restored after.
#include <algorithm>
#include <cstdio>
#include <iterator>
#include <set>
#include <map>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/image/figure.h"
#include "netlens/image/npy.h"
#include "netlens/image/render.h"
#include "netlens/techniques/common.h"
#include "netlens/techniques/compose.h"
#include "netlens/techniques/evaluate.h"
#include "netlens/techniques/overview_family.h"

namespace netlens {

torch::Tensor RankingMap(const Artifact& a, int64_t height, int64_t width) {
  const torch::Tensor t = a.tensor.detach().to(torch::kCPU, torch::kFloat64);
  if (a.kind == Artifact::Kind::kInputAttribution) return t[0].sum(0);
  if (a.kind == Artifact::Kind::kLayerMap)
    return ResizeMap(t[0][0].clamp_min(0), height, width, a.nearest);
  throw UsageError("evaluate: " + a.name + " is not an attribution map");
}

torch::Tensor RiseBlur(const torch::Tensor& x) {
  constexpr int64_t kSize = 11;
  constexpr double kSigma = 5;
  torch::Tensor g = torch::arange(kSize, torch::kFloat64) - (kSize - 1) / 2.0;
  g = torch::exp(-g * g / (2 * kSigma * kSigma));
  g = g / g.sum();
  const torch::Tensor k2 = torch::outer(g, g).to(x.scalar_type()).to(x.device());
  const int64_t c = x.size(1);
  const torch::Tensor weight = k2.expand({c, 1, kSize, kSize}).contiguous();
  return torch::conv2d(x, weight, {}, 1, kSize / 2, 1, c);
}

double RiseAuc(const std::vector<double>& curve) {
  if (curve.size() < 2) return curve.empty() ? 0 : curve[0];
  double sum = 0;
  for (double v : curve) sum += v;
  return (sum - curve.front() / 2 - curve.back() / 2) / static_cast<double>(curve.size() - 1);
}

std::vector<double> CausalCurve(Model& model, const torch::Tensor& x, const torch::Tensor& map, int64_t target,
                                bool deletion, int64_t steps, int64_t batch_size) {
  const int64_t h = x.size(2), w = x.size(3), n = h * w;
  // Rank of each pixel: 0 for the largest value; ties keep pixel order (stable sort).
  const torch::Tensor order = std::get<1>(map.reshape({n}).sort(/*stable=*/true, 0, /*descending=*/true));
  torch::Tensor rank = torch::empty({n}, torch::kLong);
  rank.index_put_({order}, torch::arange(n, torch::kLong));
  rank = rank.view({1, 1, h, w}).to(x.device());
  const torch::Tensor start = deletion ? x : RiseBlur(x);
  const torch::Tensor finish = deletion ? torch::zeros_like(x) : x;
  std::vector<double> curve;
  torch::NoGradGuard no_grad;
  for (int64_t first = 0; first <= steps; first += batch_size) {
    const int64_t last = std::min(steps, first + batch_size - 1);
    std::vector<int64_t> counts;
    for (int64_t i = first; i <= last; ++i) counts.push_back((i * n + steps / 2) / steps);  // round(i n / steps)
    const torch::Tensor k = torch::tensor(counts, torch::kLong).view({-1, 1, 1, 1}).to(x.device());
    const torch::Tensor changed = rank < k;  // B x 1 x h x w
    const torch::Tensor batch = torch::where(changed, finish, start);
    const torch::Tensor probs = torch::softmax(model.Logits(batch).to(torch::kFloat64), 1).select(1, target).cpu();
    for (int64_t i = 0; i < probs.size(0); ++i) curve.push_back(probs[i].item<double>());
  }
  return curve;
}

torch::Tensor InputShaped(const Artifact& a, const torch::Tensor& x) {
  if (a.kind == Artifact::Kind::kInputAttribution) return a.tensor.detach().to(x.scalar_type());
  // A layer map: upsampled (after ReLU) and the same in every channel.
  const torch::Tensor up = RankingMap(a, x.size(2), x.size(3)).to(x.device(), x.scalar_type());
  return up.view({1, 1, x.size(2), x.size(3)}).expand_as(x).contiguous();
}

double Infidelity(Model& model, const torch::Tensor& x, const torch::Tensor& attribution, int64_t target,
                  int64_t samples, double sigma, uint64_t seed, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const torch::Tensor noise = SeededNormal(x, samples, seed) * sigma;  // samples x C x H x W
  const double fx = model.Logits(x).to(torch::kFloat64)[0][target].item<double>();
  const torch::Tensor f = BatchedLogits(model, x - noise, batch_size).to(torch::kFloat64).select(1, target).cpu();
  const torch::Tensor dots = (noise * attribution).reshape({samples, -1}).sum(1).to(torch::kCPU, torch::kFloat64);
  return ((dots - (fx - f)).pow(2)).mean().item<double>();
}

// The first attribution map among a technique's artifacts.
static const Artifact* FirstMap(const std::vector<Artifact>& artifacts) {
  for (const auto& a : artifacts)
    if (a.kind == Artifact::Kind::kInputAttribution || a.kind == Artifact::Kind::kLayerMap) return &a;
  return nullptr;
}

double MaxSensitivity(TechniqueContext& ctx, const std::string& technique, const Artifact& map, int64_t samples,
                      double radius, uint64_t seed) {
  const torch::Tensor& x = ctx.input.tensor;
  const torch::Tensor base = map.tensor.detach().to(torch::kCPU, torch::kFloat64);
  double norm = base.norm().item<double>();
  if (norm == 0) norm = 1;  // Captum's convention for an all-zero explanation
  const torch::Tensor deltas = (SeededUniform(x.expand({samples, -1, -1, -1}), seed) * 2 - 1) * radius;
  double worst = 0;
  for (int64_t j = 0; j < samples; ++j) {
    InputImage perturbed = ctx.input;
    perturbed.tensor = x + deltas.slice(0, j, j + 1);
    TechniqueContext sub{ctx.model, perturbed, ctx.target, ctx.params};
    const std::vector<Artifact> artifacts = RunComposed(sub, technique, Json::object(), "");
    const Artifact* now = FirstMap(artifacts);  // a map read from a file has no name
    for (const auto& a : artifacts)
      if (!map.name.empty() && a.name == map.name && a.layer == map.layer) now = &a;
    if (!now) throw UsageError("evaluate: " + technique + " writes no attribution map to score");
    worst = std::max(worst, (now->tensor.detach().to(torch::kCPU, torch::kFloat64) - base).norm().item<double>() / norm);
  }
  return worst;
}

namespace {

struct MetricInfo {
  const char* name;
  bool deletion;
  bool higher_is_better;
};
const MetricInfo kMetrics[] = {{"deletion", true, false},     {"insertion", false, true},
                               {"road", false, true},         {"infidelity", false, false},
                               {"sensitivity", false, false}, {"randomization", false, false}};
constexpr double kSanityThreshold = 0.5;  // rank correlation at which a map "did not change"

// ROAD's fractions: 10%, 20%, .., 90% of the pixels removed.
std::vector<double> RoadCurve(Model& model, const torch::Tensor& x, const torch::Tensor& map, int64_t target,
                              bool most_relevant_first, double noise, uint64_t seed, int64_t batch_size) {
  const int64_t h = x.size(2), w = x.size(3), n = h * w;
  const torch::Tensor order = std::get<1>(map.reshape({n}).sort(/*stable=*/true, 0, /*descending=*/true));
  torch::Tensor rank = torch::empty({n}, torch::kLong);
  rank.index_put_({order}, torch::arange(n, torch::kLong));
  std::vector<torch::Tensor> imputed;
  for (int64_t f = 1; f <= 9; ++f) {
    const int64_t k = (f * n + 5) / 10;
    const torch::Tensor remove = most_relevant_first ? rank < k : rank >= n - k;
    imputed.push_back(NoisyLinearImpute(x, remove.view({h, w}), noise, seed + static_cast<uint64_t>(f)));
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor probs =
      torch::softmax(BatchedLogits(model, torch::cat(imputed), batch_size).to(torch::kFloat64), 1).select(1, target).cpu().contiguous();
  return std::vector<double>(probs.data_ptr<double>(), probs.data_ptr<double>() + probs.numel());
}

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}


torch::Tensor UnitScaled(const torch::Tensor& m) {
  const double top = m.max().item<double>();
  return top > 0 ? m / top : torch::zeros_like(m);
}

// A map an earlier run wrote ("label=file.npy", evaluate --from): its kind from its shape.
Artifact LoadedMap(const std::string& spec, const torch::Tensor& x) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos) throw UsageError("maps: " + Quote(spec) + " is not LABEL=FILE.npy");
  const std::string file = spec.substr(eq + 1);
  const torch::Tensor t = ReadNpyFile(file, "map " + Quote(file) + " (" + spec.substr(0, eq) + ")",
                                      4.0 * static_cast<double>(x.numel()) * 8 + 4096, "any map of this input");
  Artifact a{"", t.to(x.device(), x.scalar_type()), Artifact::Kind::kInputAttribution};
  if (t.sizes() == x.sizes()) return a;
  if (t.dim() == 4 && t.size(0) == 1 && t.size(1) == 1) {
    a.kind = Artifact::Kind::kLayerMap;
    return a;
  }
  throw UsageError("map " + Quote(file) + " has shape " + c10::str(t.sizes()) + "; evaluate scores maps of the " +
                   "input's shape " + c10::str(x.sizes()) + " or layer maps of shape 1 x 1 x h x w");
}

struct Chart {
  std::string x_label;
  std::string legend;  // what the number in brackets is
  std::vector<Series> series;
  std::vector<std::string> x_ticks;  // empty: fractions 0 .. 1
};

std::vector<Artifact> RunEvaluate(TechniqueContext& ctx) {
  const Params& p = ctx.params;
  const torch::Tensor& x = ctx.input.tensor;
  const int64_t steps = p.Int("steps"), batch = p.Int("batch_size");
  std::vector<std::string> techniques = p.Strs("techniques");
  std::vector<std::string> metrics = p.Strs("metric");
  for (const auto& t : techniques)
    if (t == "evaluate" || t == "gist" || t == "factorize")
      throw UsageError("evaluate: " + Quote(t) + " makes no single map to score; give attribution techniques");
  Json scores = Json::array();
  Json curves = Json::object();
  std::vector<std::string> chart_order;
  std::map<std::string, Chart> charts;
  const auto plot = [&](const std::string& chart, const std::string& x_label, const std::string& legend,
                        const std::string& technique, const std::vector<double>& values,
                        const std::vector<std::string>& x_ticks = {}) {
    if (!charts.count(chart)) chart_order.push_back(chart);
    Chart& c = charts[chart];
    c.x_label = x_label;
    c.x_ticks = x_ticks;
    c.legend = legend;
    c.series.push_back({technique, values});
  };
  std::map<std::string, std::pair<std::string, torch::Tensor>> originals;  // technique -> (map name/layer, map)
  std::set<std::string> flat;  // techniques whose map is constant: no ranking to compare
  std::vector<Artifact> out;
  StageTimer timer;
  // What is scored: each technique's first map, computed here or read from an earlier run.
  struct Scored {
    std::string name;       // label in scores and charts
    std::string technique;  // what sensitivity and randomization recompute
    Artifact map;
  };
  std::vector<Scored> scored;
  if (p.IsSet("maps")) {
    for (const auto& spec : p.Strs("maps")) {
      const std::string label = spec.substr(0, spec.find('='));
      Scored s{label, label.substr(0, label.find('#')), LoadedMap(spec, x)};
      Log().info("evaluate: {} map read from {} ({})", label, spec.substr(spec.find('=') + 1),
                 c10::str(s.map.tensor.sizes()));
      scored.push_back(std::move(s));
    }
    techniques.clear();
    for (const auto& s : scored) techniques.push_back(s.name);
  } else {
    for (const auto& name : techniques) {
      std::vector<Artifact> artifacts = RunComposed(ctx, name, Json::object(), "");
      const Artifact* map = FirstMap(artifacts);
      if (!map) throw UsageError("evaluate: " + name + " writes no attribution map to score");
      scored.push_back({name, name, *map});
    }
  }
  for (const auto& entry : scored) {
    const std::string& name = entry.name;
    const Artifact* map = &entry.map;
    if (entry.technique == "eigencam")
      Log().info("evaluate: eigencam has no target; its map is scored with the target {} ({})",
                 ctx.model.Label(ctx.target), ctx.target);
    const torch::Tensor ranking = RankingMap(*map, x.size(2), x.size(3));
    originals[name] = {map->name + "\n" + map->layer, SanityMap(*map, x.size(2), x.size(3))};
    if ((ranking.max() == ranking.min()).item<bool>()) {
      flat.insert(name);
      Log().warn("evaluate: {}'s map is constant ({} everywhere): its pixel order is the raster order, so its "
                 "scores say nothing about the technique, and randomization skips it",
                 name, ranking.max().item<double>());
    }
    timer.Stage("evaluate: " + name + " map");
    for (const auto& metric : metrics) {
      if (metric == "randomization") continue;  // all techniques at once, below
      const MetricInfo* info = nullptr;
      for (const auto& m : kMetrics)
        if (metric == m.name) info = &m;
      if (!info) throw InternalError("evaluate: metric " + metric + " is declared but not implemented");
      double value = 0;
      if (metric == "infidelity") {
        value = Infidelity(ctx.model, x, InputShaped(*map, x), ctx.target, p.Int("samples"), p.Float("noise"),
                           static_cast<uint64_t>(p.Int("seed")), batch);
        Log().info("evaluate: {} infidelity {:.6g} ({} Gaussian perturbations, sigma {})", name, value,
                   p.Int("samples"), p.Float("noise"));
      } else if (metric == "sensitivity") {
        value = MaxSensitivity(ctx, entry.technique, *map, p.Int("samples"), p.Float("radius"),
                               static_cast<uint64_t>(p.Int("seed")));
        Log().info("evaluate: {} max-sensitivity {:.6g} ({} perturbations in the L-inf ball of radius {})", name,
                   value, p.Int("samples"), p.Float("radius"));
      } else if (metric == "road") {
        const uint64_t seed = static_cast<uint64_t>(p.Int("seed"));
        const std::vector<double> morf = RoadCurve(ctx.model, x, ranking, ctx.target, true, p.Float("road_noise"), seed, batch);
        const std::vector<double> lerf = RoadCurve(ctx.model, x, ranking, ctx.target, false, p.Float("road_noise"), seed, batch);
        value = (Mean(lerf) - Mean(morf)) / 2;
        Log().info("evaluate: {} ROAD {:.4f} (mean p(target) {:.4f} with the least relevant 10..90% imputed, {:.4f} "
                   "with the most relevant)", name, value, Mean(lerf), Mean(morf));
        curves[name]["road_morf"] = morf;
        curves[name]["road_lerf"] = lerf;
        const std::string x_label = "percent of the pixels imputed";
        std::vector<std::string> ticks;
        for (int f = 1; f <= 9; ++f) ticks.push_back(std::to_string(10 * f) + "%");
        plot("road: most relevant first", x_label, "mean", name, morf, ticks);
        plot("road: least relevant first", x_label, "mean", name, lerf, ticks);
        out.push_back({"road_" + name, torch::stack({torch::tensor(morf, torch::kFloat64), torch::tensor(lerf, torch::kFloat64)}),
                       Artifact::Kind::kRawOnly});
      } else {
        const std::vector<double> curve = CausalCurve(ctx.model, x, ranking, ctx.target, info->deletion, steps, batch);
        value = RiseAuc(curve);
        Log().info("evaluate: {} {} AUC {:.4f} ({} steps)", name, metric, value, steps);
        curves[name][metric] = curve;
        plot(metric, "fraction of pixels " + std::string(metric == "deletion" ? "removed" : "inserted"), "area", name, curve);
        out.push_back({metric + "_" + name, torch::tensor(curve, torch::kFloat64).view({1, -1}), Artifact::Kind::kRawOnly});
      }
      timer.Stage("evaluate: " + name + " " + metric);
      scores.push_back({{"technique", name}, {"metric", metric}, {"value", value},
                        {"higher_is_better", info->higher_is_better}});
    }
  }
  if (std::find(metrics.begin(), metrics.end(), "randomization") != metrics.end()) {
    CascadingRandomization cascade(ctx.model, static_cast<uint64_t>(p.Int("seed")));
    const int64_t limit = p.Int("randomization_layers");
    const size_t count = limit > 0 ? std::min<size_t>(static_cast<size_t>(limit), cascade.layers().size())
                                   : cascade.layers().size();
    std::map<std::string, std::vector<double>> rho, ssim;
    for (size_t i = 0; i < count; ++i) {
      cascade.Randomize(i);
      for (const auto& entry : scored) {
        const std::string& name = entry.name;
        if (flat.count(name)) continue;
        const auto& [which, original] = originals[name];
        const std::vector<Artifact> artifacts = RunComposed(ctx, entry.technique, Json::object(), "");
        const Artifact* map = nullptr;
        for (const auto& a : artifacts)
          if (a.name + "\n" + a.layer == which) map = &a;
        if (!map) map = FirstMap(artifacts);
        torch::Tensor now = SanityMap(*map, x.size(2), x.size(3));
        if (!torch::isfinite(now).all().item<bool>()) now = torch::zeros_like(now);  // no ranking left: rho 0
        rho[name].push_back(Spearman(original, now));
        ssim[name].push_back(Ssim(UnitScaled(original), UnitScaled(now)));
      }
      timer.Stage("evaluate: randomization, layers down to " +
                  (cascade.layers()[i].empty() ? std::string("the model's own parameters") : cascade.layers()[i]));
    }
    std::vector<std::string> layers(cascade.layers().begin(), cascade.layers().begin() + count);
    for (auto& l : layers)
      if (l.empty()) l = "(the model's own parameters)";
    for (const auto& name : techniques) {
      if (flat.count(name)) continue;
      const double value = Mean(rho[name]);
      const bool fails = value >= kSanityThreshold;
      Log().info("evaluate: {} randomization: rank correlation with the original map {:.3f} on average over the "
                 "cascade ({:.3f} after re-drawing the top layer, {}; {:.3f} after {} layer(s) down to {}; SSIM "
                 "{:.3f} at the end): {}", name, value, rho[name].front(), layers.front(), rho[name].back(), count,
                 layers.back(), ssim[name].back(),
                 fails ? "FAILS the sanity check (the map hardly depends on the model's parameters)"
                       : "passes the sanity check");
      curves[name]["randomization_spearman"] = rho[name];
      curves[name]["randomization_ssim"] = ssim[name];
      const std::string x_label =
          "layers re-drawn: 1 = " + layers.front() + (count > 1 ? ", " + std::to_string(count) + " = " + layers.back() : "");
      std::vector<std::string> ticks;
      for (size_t i = 1; i <= count; ++i) ticks.push_back(std::to_string(i));
      plot("randomization: rank correlation", x_label, "mean", name, rho[name], ticks);
      plot("randomization: SSIM", x_label, "mean", name, ssim[name], ticks);
      out.push_back({"randomization_" + name, torch::stack({torch::tensor(rho[name], torch::kFloat64),
                                                            torch::tensor(ssim[name], torch::kFloat64)}),
                     Artifact::Kind::kRawOnly});
      scores.push_back({{"technique", name}, {"metric", "randomization"}, {"value", value},
                        {"higher_is_better", false}, {"passes", !fails}});
    }
    ctx.metrics["randomization_layers"] = layers;
  }  // the cascade puts the model's parameters back here
  // One chart per curve kind, every technique on it.
  FigureSpec figure;
  figure.title = "faithfulness on " + ctx.model.meta().name + ", target " + ctx.model.Label(ctx.target);
  figure.subtitle = "lower is better: deletion, ROAD most relevant first, randomization; higher: the others";
  figure.cell = 420;
  figure.label_width = 0;
  FigureRow row{"", "", {}};
  for (const auto& title : chart_order) {
    Chart chart = charts[title];
    for (auto& series : chart.series) {
      const double number = chart.legend == "area" ? RiseAuc(series.values)
                            : chart.legend == "mean" ? Mean(series.values) : series.values.back();
      char buf[32];
      std::snprintf(buf, sizeof(buf), " (%.3f)", number);
      series.name += buf;
    }
    const bool correlation = title.rfind("randomization", 0) == 0;
    row.cells.push_back({title, LineChart(chart.legend + " in brackets", chart.x_label,
                                          correlation ? (title.find("SSIM") != std::string::npos ? "SSIM" : "Spearman")
                                                      : "p(target)",
                                          chart.series, 1.0, 420, 420, chart.x_ticks)});
    if (row.cells.size() == 2) {  // the charts come in pairs (deletion/insertion, MoRF/LeRF, ..): one per row
      figure.rows.push_back(row);
      row.cells.clear();
    }
  }
  if (!row.cells.empty()) figure.rows.push_back(row);
  if (!figure.rows.empty()) {
    const cv::Mat chart = RenderFigure(figure);
    out.push_back({"evaluate", torch::from_blob(chart.data, {chart.rows, chart.cols, 3}, torch::kUInt8).clone(),
                   Artifact::Kind::kFigure});
  }
  ctx.metrics["scores"] = scores;
  ctx.metrics["curves"] = curves;
  ctx.metrics["steps"] = steps;
  return out;
}

}  // namespace

TechniqueInfo EvaluateTechnique() {
  OptionTable options{
      {"techniques", OptionType::kStringList, "techniques whose maps are scored (each with its defaults)",
       Json::array({"saliency", "guided", "gradcam", "integrated-gradients"})},
      {"from", OptionType::kString,
       "score the maps an earlier run wrote in this folder (its manifest.json: models, images, targets)", nullptr,
       {}, {}, {}, false, "DIR", true},
      {"maps", OptionType::kStringList,
       "maps to score instead of computing them: LABEL=FILE.npy (what --from fills in)"},
      {"metric", OptionType::kStringList,
       "metrics: deletion, insertion, road, infidelity, sensitivity, randomization",
       Json::array({"deletion", "insertion"}),
       {"deletion", "insertion", "road", "infidelity", "sensitivity", "randomization"}},
      {"steps", OptionType::kInt, "deletion / insertion: fractions of the pixels, equal steps", 50, {}, 1.0, 100000.0},
      {"batch_size", OptionType::kInt, "perturbed inputs per forward pass", 32, {}, 1.0, 4096.0},
      {"samples", OptionType::kInt, "infidelity and sensitivity: perturbations (Captum's n_perturb_samples)", 10,
       {}, 1.0, 100000.0},
      {"noise", OptionType::kFloat, "infidelity: sigma of the Gaussian perturbations (model input space)", 0.1, {},
       0.0, 1e6},
      {"radius", OptionType::kFloat, "sensitivity: radius of the L-inf ball (Captum's perturb_radius)", 0.02, {},
       0.0, 1e6},
      {"road_noise", OptionType::kFloat, "road: standard deviation of the imputation noise (model input space)",
       0.01, {}, 0.0, 1e6},
      {"randomization_layers", OptionType::kInt,
       "randomization: layers re-drawn, from the top down (0: all the model's layers with parameters)", 3, {},
       0.0, 100000.0},
      {"seed", OptionType::kInt, "seed of the perturbations, imputation noise and re-drawn parameters", 0, {}, 0.0,
       2147483647.0},
  };
  return {"evaluate", "faithfulness of techniques' maps: deletion, insertion, ROAD, infidelity, max-sensitivity, "
          "model randomization", options,
          RunEvaluate, BatchPass::kForward};
}

}  // namespace netlens
