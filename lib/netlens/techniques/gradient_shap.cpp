// GradientSHAP (Lundberg and Lee 2017; expected gradients, Erion et al. 2021), as Captum's
// GradientShap: for each of --samples draws, a baseline b_i picked uniformly from --baselines, the
// input with Gaussian noise x_i = x + N(0, stdevs^2) and a point a_i ~ U(0, 1) on the segment,
//   attr = mean_i (x_i - b_i) * grad f_t(b_i + a_i (x_i - b_i)).
// Every draw comes from --seed (baseline indices and points from one CPU generator, the noise as
// smoothgrad's), so a run is reproducible on any device; samples run in batches of --batch-size.
// The manifest records how often each baseline was drawn and the completeness of the mean:
// sum(attr) against mean_i f_t(x) - f_t(b_i), exact for a model linear along the segments.
#include <ATen/CPUGeneratorImpl.h>

#include "netlens/core/errors.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/common.h"

namespace netlens {

TechniqueInfo GradientShapTechnique() {
  OptionTable options{
      {"baselines", OptionType::kStringList,
       "baselines drawn from, each zero, black, blur, uniform or an image file", Json::array({"zero", "blur", "uniform"}),
       {}, {}, {}, false, "", true},
      {"samples", OptionType::kInt, "number of (baseline, noise, point) draws", 50, {}, 1.0, 100000.0},
      {"stdevs", OptionType::kFloat, "standard deviation of the Gaussian noise on the input (model input space)", 0.0,
       {}, 0.0, 1e6},
      {"blur_sigma", OptionType::kFloat, "Gaussian sigma in pixels of the blur baseline", 10.0, {}, 0.1, 1000.0},
      {"batch_size", OptionType::kInt, "draws per forward/backward pass", 16, {}, 1.0, 4096.0},
      {"seed", OptionType::kInt, "seed of the draws (and of the uniform baseline)", 0, {}, 0.0, 4294967295.0},
  };
  return {"gradient-shap", "GradientSHAP: expected gradients over random baselines, noise and path points", options,
          [](TechniqueContext& ctx) {
            const auto& p = ctx.params;
            const torch::Tensor& x = ctx.input.tensor;
            const std::vector<std::string> kinds = p.Strs("baselines");
            if (kinds.empty()) throw UsageError("gradient-shap: --baselines is empty; give at least one (e.g. zero)");
            std::vector<torch::Tensor> set;
            for (const auto& kind : kinds) set.push_back(BaselineOf(ctx, kind));
            const torch::Tensor baselines = torch::cat(set);
            const int64_t n = p.Int("samples");
            const uint64_t seed = static_cast<uint64_t>(p.Int("seed"));
            auto generator = at::detail::createCPUGenerator(seed);
            const torch::Tensor which = torch::randint(static_cast<int64_t>(kinds.size()), {n}, generator, torch::kLong);
            const torch::Tensor alpha = torch::rand({n}, generator, torch::kFloat64)
                                            .to(x.device(), x.scalar_type()).view({-1, 1, 1, 1});
            torch::Tensor noisy = x.expand({n, -1, -1, -1});
            if (p.Float("stdevs") > 0) noisy = noisy + p.Float("stdevs") * SeededNormal(x, n, seed + 1);
            const torch::Tensor b = baselines.index_select(0, which.to(x.device()));
            const torch::Tensor points = b + alpha * (noisy - b);
            const torch::Tensor g = BatchedInputGradients(ctx.model, points, ctx.target, BackwardRule::kVanilla,
                                                          p.Int("batch_size"));
            const torch::Tensor attr = ((noisy - b) * g).mean(0, true);
            Json draws = Json::object();
            const torch::Tensor counts = torch::bincount(which, {}, static_cast<int64_t>(kinds.size()));
            for (size_t i = 0; i < kinds.size(); ++i)
              draws[kinds[i]] = draws.value(kinds[i], 0) + counts[static_cast<int64_t>(i)].item<int64_t>();
            ctx.metrics["baseline_draws"] = draws;
            const torch::Tensor logits = BatchedLogits(ctx.model, torch::cat({x, b}), p.Int("batch_size")).select(1, ctx.target);
            const double expected = (logits[0] - logits.slice(0, 1).mean()).item<double>();
            const double total = attr.sum().item<double>();
            ctx.metrics["completeness"] = CompletenessMetrics(total, expected);
            return std::vector<Artifact>{{"gradient_shap", attr}};
          }, BatchPass::kForwardBackward};
}

}  // namespace netlens
