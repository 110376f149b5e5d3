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
#include <cstdio>
#include <map>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"
#include "netlens/image/figure.h"
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
    for (const auto& a : RunComposed(sub, technique, Json::object(), ""))
      if (a.name == map.name && a.layer == map.layer) {
        worst = std::max(worst, (a.tensor.detach().to(torch::kCPU, torch::kFloat64) - base).norm().item<double>() / norm);
        break;
      }
  }
  return worst;
}

namespace {

struct MetricInfo {
  const char* name;
  bool deletion;
  bool higher_is_better;
};
const MetricInfo kMetrics[] = {{"deletion", true, false}, {"insertion", false, true},
                               {"infidelity", false, false}, {"sensitivity", false, false}};

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
  std::map<std::string, std::vector<Series>> charts;
  std::vector<Artifact> out;
  StageTimer timer;
  for (const auto& name : techniques) {
    std::vector<Artifact> artifacts = RunComposed(ctx, name, Json::object(), "");
    const Artifact* map = nullptr;
    for (const auto& a : artifacts)
      if (a.kind == Artifact::Kind::kInputAttribution || a.kind == Artifact::Kind::kLayerMap) {
        map = &a;
        break;
      }
    if (!map) throw UsageError("evaluate: " + name + " writes no attribution map to score");
    if (name == "eigencam")
      Log().info("evaluate: eigencam has no target; its map is scored with the target {} ({})",
                 ctx.model.Label(ctx.target), ctx.target);
    const torch::Tensor ranking = RankingMap(*map, x.size(2), x.size(3));
    timer.Stage("evaluate: " + name + " map");
    for (const auto& metric : metrics) {
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
        value = MaxSensitivity(ctx, name, *map, p.Int("samples"), p.Float("radius"), static_cast<uint64_t>(p.Int("seed")));
        Log().info("evaluate: {} max-sensitivity {:.6g} ({} perturbations in the L-inf ball of radius {})", name,
                   value, p.Int("samples"), p.Float("radius"));
      } else {
        const std::vector<double> curve = CausalCurve(ctx.model, x, ranking, ctx.target, info->deletion, steps, batch);
        value = RiseAuc(curve);
        Log().info("evaluate: {} {} AUC {:.4f} ({} steps)", name, metric, value, steps);
        curves[name][metric] = curve;
        charts[metric].push_back({name, curve});
        out.push_back({metric + "_" + name, torch::tensor(curve, torch::kFloat64).view({1, -1}), Artifact::Kind::kRawOnly});
      }
      timer.Stage("evaluate: " + name + " " + metric);
      scores.push_back({{"technique", name}, {"metric", metric}, {"value", value},
                        {"higher_is_better", info->higher_is_better}});
    }
  }
  // One chart per metric, every technique on it.
  FigureSpec figure;
  figure.title = "faithfulness on " + ctx.model.meta().name + ", target " + ctx.model.Label(ctx.target);
  figure.subtitle = "p(target) as pixels are removed (lower area: better) or inserted into a blurred copy "
                    "(higher: better), in each map's order";
  figure.cell = 420;
  figure.label_width = 0;
  FigureRow row{"", "", {}};
  for (const auto& metric : metrics) {
    if (!charts.count(metric)) continue;  // scores without a curve (infidelity, sensitivity)
    std::vector<Series> series = charts[metric];
    for (auto& s : series) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), " (%.3f)", RiseAuc(s.values));
      s.name += buf;
    }
    row.cells.push_back({metric, LineChart("area under the curve in brackets", "fraction of pixels " +
                                               std::string(metric == "deletion" ? "removed" : "inserted"),
                                           "p(target)", series, 1.0, 420, 420)});
  }
  if (!row.cells.empty()) {
    figure.rows.push_back(row);
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
      {"metric", OptionType::kStringList, "metrics: deletion, insertion, infidelity, sensitivity",
       Json::array({"deletion", "insertion"}), {"deletion", "insertion", "infidelity", "sensitivity"}},
      {"steps", OptionType::kInt, "deletion / insertion: fractions of the pixels, equal steps", 50, {}, 1.0, 100000.0},
      {"batch_size", OptionType::kInt, "perturbed inputs per forward pass", 32, {}, 1.0, 4096.0},
      {"samples", OptionType::kInt, "infidelity and sensitivity: perturbations (Captum's n_perturb_samples)", 10,
       {}, 1.0, 100000.0},
      {"noise", OptionType::kFloat, "infidelity: sigma of the Gaussian perturbations (model input space)", 0.1, {},
       0.0, 1e6},
      {"radius", OptionType::kFloat, "sensitivity: radius of the L-inf ball (Captum's perturb_radius)", 0.02, {},
       0.0, 1e6},
      {"seed", OptionType::kInt, "seed of the perturbations", 0, {}, 0.0, 2147483647.0},
  };
  return {"evaluate", "faithfulness of techniques' maps: deletion, insertion, infidelity, max-sensitivity", options,
          RunEvaluate, BatchPass::kForward};
}

}  // namespace netlens
