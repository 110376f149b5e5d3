// LIME (Ribeiro et al. 2016) on superpixels, as Captum's Lime with its defaults: each of
// --samples draws switches every superpixel on with probability 1/2; a draw weighs
// exp(-d^2 / (2 kernel_width^2)), d the cosine (or Euclidean) distance between the perturbed and
// the original input; a weighted linear surrogate (Lasso, alpha 0.01, by default) of f_t over the
// on/off vectors gives one coefficient per superpixel, spread over its pixels.
#include <ATen/CPUGeneratorImpl.h>

#include <chrono>

#include "netlens/core/log.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/superpixels.h"
#include "netlens/techniques/surrogate.h"

namespace netlens {

TechniqueInfo LimeTechnique() {
  OptionTable options = SuperpixelOptions();
  options.push_back({"samples", OptionType::kInt, "perturbed inputs evaluated (Captum's default is 50)", 1000, {},
                     1.0, 1000000.0});
  options.push_back({"kernel_width", OptionType::kFloat, "width of the exponential similarity kernel", 1.0, {},
                     1e-6, 1e6});
  options.push_back({"distance", OptionType::kString, "distance of a perturbed input to the input", "cosine",
                     {"cosine", "euclidean"}});
  options.push_back({"regression", OptionType::kString, "the surrogate: lasso (Captum's), ridge or linear",
                     "lasso", {"lasso", "ridge", "linear"}});
  options.push_back({"alpha", OptionType::kFloat, "regularization strength of lasso or ridge", 0.01, {}, 0.0, 1e9});
  return {"lime", "LIME: a locally weighted linear surrogate of the model over superpixels switched on and off",
          options,
          [](TechniqueContext& ctx) {
            const auto& p = ctx.params;
            const Superpixels sp = Segment(ctx, "lime");
            const torch::Tensor baseline = SuperpixelBaseline(ctx, sp);
            const int64_t n = p.Int("samples");
            auto generator = at::detail::createCPUGenerator(static_cast<uint64_t>(p.Int("seed")));
            const torch::Tensor z = torch::bernoulli(torch::full({n, sp.count}, 0.5, torch::kFloat64), generator);
            const SuperpixelEvaluation e = EvaluateSuperpixels(ctx, baseline, sp, z, p.Int("batch_size"), true);
            const torch::Tensor d = p.Str("distance") == "cosine" ? e.cosine_distance : e.euclidean_distance;
            const double width = p.Float("kernel_width");
            const torch::Tensor weights = torch::exp(-d.square() / (2 * width * width));
            if (weights.sum().item<double>() < 1e-12 * n)
              Log().warn("lime: every sample weighs almost nothing (largest weight {:.3g}): the kernel width {} is "
                         "small for {} distances of about {:.3g}; raise --kernel-width", weights.max().item<double>(),
                         width, p.Str("distance"), d.mean().item<double>());
            const auto fit_start = std::chrono::steady_clock::now();
            const SurrogateFit fit = FitSurrogate(z, e.scores, weights, ParseRegression(p.Str("regression")),
                                                  p.Float("alpha"));
            Log().info("lime: {} surrogate over {} samples fitted in {:.1f} ms{}", p.Str("regression"), n,
                       std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - fit_start).count(),
                       fit.iterations > 0 ? " (" + std::to_string(fit.iterations) + " coordinate-descent sweeps)" : "");
            ctx.metrics["samples"] = n;
            ctx.metrics["surrogate"] = {{"r2", fit.r2},
                                        {"intercept", fit.intercept},
                                        {"nonzero", (fit.coefficients != 0).sum().item<int64_t>()},
                                        {"mean_weight", weights.mean().item<double>()}};
            if (fit.iterations > 0) ctx.metrics["surrogate"]["iterations"] = fit.iterations;
            return SuperpixelArtifacts(ctx, sp, "lime", fit.coefficients);
          }, BatchPass::kForward};
}

}  // namespace netlens
