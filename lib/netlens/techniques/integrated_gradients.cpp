// Integrated gradients (Sundararajan et al. 2017), as Captum's IntegratedGradients:
// attr = (x - b) * sum_k w_k * grad f_t(b + a_k (x - b)), path points evaluated in batches.
// Methods: gausslegendre (default: a_k = (1 + node_k) / 2, w_k = weight_k / 2, nodes in float64),
// riemann_left / right / middle (w_k = 1 / n) and trapezoid (the trapezoid rule on n equally
// spaced points: w_k = 1 / (n - 1), end weights halved; Captum's weighs 1 / n, see docs).
// Baselines: zero (Captum's default, 0 in the normalized input space), black (a black image),
// blur (the input blurred), uniform (uniform noise image, seeded), or an image file.
// The manifest gets the completeness delta sum(attr) - (f_t(x) - f_t(b)).
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <filesystem>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/common.h"
#include "netlens/techniques/rectifier_report.h"

namespace netlens {

void GaussLegendre(int64_t n, std::vector<double>& nodes, std::vector<double>& weights) {
  nodes.assign(n, 0);
  weights.assign(n, 0);
  const double pi = std::acos(-1.0);
  for (int64_t i = 0; i < (n + 1) / 2; ++i) {
    double z = std::cos(pi * (i + 0.75) / (n + 0.5));  // initial guess for the i-th root
    double dp = 0;
    for (int iter = 0; iter < 100; ++iter) {
      double p0 = 1, p1 = z;  // Legendre recurrence up to P_n(z)
      for (int64_t k = 2; k <= n; ++k) {
        const double pk = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = pk;
      }
      dp = n * (z * p1 - p0) / (z * z - 1);
      const double dz = p1 / dp;
      z -= dz;
      if (std::abs(dz) < 1e-15) break;
    }
    nodes[i] = -z;
    nodes[n - 1 - i] = z;
    weights[i] = weights[n - 1 - i] = 2 / ((1 - z * z) * dp * dp);
  }
}

void IntegrationRule(const std::string& method, int64_t n, std::vector<double>& alphas,
                     std::vector<double>& weights) {
  alphas.assign(n, 0);
  weights.assign(n, 1.0 / n);
  if (method == "gausslegendre") {
    GaussLegendre(n, alphas, weights);
    for (int64_t k = 0; k < n; ++k) {
      alphas[k] = 0.5 * (1 + alphas[k]);
      weights[k] *= 0.5;
    }
    return;
  }
  for (int64_t k = 0; k < n; ++k) {
    if (method == "riemann_left") alphas[k] = static_cast<double>(k) / n;
    else if (method == "riemann_right") alphas[k] = static_cast<double>(k + 1) / n;
    else if (method == "riemann_middle") alphas[k] = (k + 0.5) / n;
    else if (method == "riemann_trapezoid") alphas[k] = n == 1 ? 0.0 : static_cast<double>(k) / (n - 1);
    else throw UsageError("integrated-gradients: unknown method " + Quote(method));
  }
  if (method == "riemann_trapezoid" && n > 1) {
    // linspace(0, 1, n) as Captum, with the trapezoid rule's step 1 / (n - 1) (Captum takes 1 / n,
    // so its weights sum to (n - 1) / n: docs/techniques.md); end points weigh half.
    weights.assign(n, 1.0 / (n - 1));
    weights.front() *= 0.5;
    weights.back() *= 0.5;
  }
}

torch::Tensor IntegrationBaseline(TechniqueContext& ctx) { return BaselineOf(ctx, ctx.params.Str("baseline")); }

IntegrationPath IntegrationPathOf(TechniqueContext& ctx, int64_t points) {
  const torch::Tensor& x = ctx.input.tensor;
  IntegrationPath out;
  out.baseline = IntegrationBaseline(ctx);
  std::vector<double> alphas;
  IntegrationRule(ctx.params.Str("method"), points, alphas, out.weights);
  const torch::Tensor a = torch::tensor(alphas, torch::kFloat64).to(x.device(), x.scalar_type()).view({-1, 1, 1, 1});
  out.path = out.baseline + a * (x - out.baseline);
  return out;
}

torch::Tensor BaselineOf(TechniqueContext& ctx, const std::string& kind) {
  const torch::Tensor& x = ctx.input.tensor;
  const Model& model = ctx.model;
  if (kind == "zero") return torch::zeros_like(x);
  if (kind == "black") return ImageToTensor(cv::Mat::zeros(x.size(2), x.size(3), CV_8UC3), model.meta(), x.device(), x.scalar_type());
  if (kind == "blur") {
    cv::Mat blurred;
    const double sigma = ctx.params.Float("blur_sigma");
    cv::GaussianBlur(ctx.input.display, blurred, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT);
    return ImageToTensor(blurred, model.meta(), x.device(), x.scalar_type());
  }
  if (kind == "uniform") {
    // A uniform-noise picture in [0, 1] pixel space, normalized like any image.
    const torch::Tensor u = SeededUniform(x, static_cast<uint64_t>(ctx.params.Int("seed")));
    const auto& m = model.meta();
    auto mean = torch::tensor(m.mean, torch::kFloat64).view({-1, 1, 1}).to(x.device(), x.scalar_type());
    auto stdv = torch::tensor(m.std, torch::kFloat64).view({-1, 1, 1}).to(x.device(), x.scalar_type());
    return (u - mean) / stdv;
  }
  if (!std::filesystem::exists(kind))
    throw UsageError("baseline " + Quote(kind) +
                     " is neither zero, black, blur, uniform nor an existing image file");
  const torch::Tensor b = PrepareInput(kind, model, ParseResizePolicy(ctx.params.Str("resize"))).tensor;
  if (b.sizes() != x.sizes()) {
    const auto size = [](const torch::Tensor& t) { return std::to_string(t.size(-1)) + "x" + std::to_string(t.size(-2)); };
    throw UsageError("baseline " + Quote(kind) + " is " + size(b) + " after preprocessing, the image " + size(x) +
                     ": give a baseline of the image's size, or let --resize crop or fit bring both to the model's "
                     "input size");
  }
  return b.to(x.device(), x.scalar_type());
}

Json CompletenessMetrics(double sum_attribution, double logit_difference) {
  const double delta = sum_attribution - logit_difference;
  return {{"sum_attribution", sum_attribution},
          {"logit_difference", logit_difference},
          {"delta", delta},
          {"relative_delta", std::abs(delta) / std::max(std::abs(logit_difference), 1e-12)}};
}

OptionTable IntegrationOptions() {
  return {
      {"steps", OptionType::kInt, "number of path points", 50, {}, 1.0, 100000.0},
      {"method", OptionType::kString, "integration rule", "gausslegendre",
       {"gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"}},
      {"baseline", OptionType::kString, "zero, black, blur, uniform, or an image file", "zero", {},
       {}, {}, false, "", true},
      {"blur_sigma", OptionType::kFloat, "Gaussian sigma in pixels of the blur baseline", 10.0, {},
       0.1, 1000.0},
      {"batch_size", OptionType::kInt, "path points per forward/backward pass", 16, {}, 1.0, 4096.0},
      {"seed", OptionType::kInt, "seed of the uniform baseline", 0, {}, 0.0, 4294967295.0},
  };
}

TechniqueInfo IntegratedGradientsTechnique() {
  OptionTable options = IntegrationOptions();
  options.insert(options.begin() + 4, {"guided", OptionType::kBool, "integrate guided-backprop gradients", false});
  return {"integrated-gradients", "integrated gradients along the path from a baseline", options,
          [](TechniqueContext& ctx) {
            const auto& p = ctx.params;
            const torch::Tensor& x = ctx.input.tensor;
            const auto [b, path, weights] = IntegrationPathOf(ctx, p.Int("steps"));
            const torch::Tensor w = torch::tensor(weights, torch::kFloat64).to(x.device(), x.scalar_type()).view({-1, 1, 1, 1});
            const auto rule = p.Bool("guided") ? BackwardRule::kGuided : BackwardRule::kVanilla;
            if (p.Bool("guided")) ctx.metrics["activations"] = RectifierReport(ctx.model, rule);
            const torch::Tensor g = BatchedInputGradients(ctx.model, path, ctx.target, rule, p.Int("batch_size"));
            const torch::Tensor attr = (x - b) * (w * g).sum(0, true);
            const torch::Tensor ends = ctx.model.Logits(torch::cat({x, b}, 0)).select(1, ctx.target);
            const double expected = (ends[0] - ends[1]).item<double>();
            const double total = attr.sum().item<double>();
            ctx.metrics["completeness"] = CompletenessMetrics(total, expected);
            return std::vector<Artifact>{{"integrated_gradients", attr}};
          }, BatchPass::kForwardBackward};
}

}  // namespace netlens
