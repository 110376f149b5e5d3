// KernelSHAP (Lundberg and Lee 2017) on superpixels, as Captum's KernelShap: coalitions z of the
// k superpixels are drawn with the Shapley kernel as their distribution (the size m with
// probability proportional to (k - 1) / (m (k - m)), then m superpixels uniformly), after the
// full and the empty coalitions, which weigh 1e6 (the kernel's infinite weight) against 1 for the
// rest; a least-squares fit of f_t(z) = b + z.phi gives the Shapley values phi, spread over each
// superpixel's pixels. The manifest records the efficiency, sum(phi) against f_t(x) - f_t(baseline).
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "netlens/core/log.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/superpixels.h"
#include "netlens/techniques/surrogate.h"

namespace netlens {

TechniqueInfo KernelShapTechnique() {
  OptionTable options = SuperpixelOptions();
  options.push_back({"samples", OptionType::kInt,
                     "coalitions evaluated, the full and the empty one included (Captum's default is 25)", 1000, {},
                     2.0, 1000000.0});
  return {"kernel-shap", "KernelSHAP: Shapley values of superpixels from a weighted linear fit over sampled coalitions",
          options,
          [](TechniqueContext& ctx) {
            const auto& p = ctx.params;
            const Superpixels sp = Segment(ctx, "kernel-shap");
            const torch::Tensor baseline = SuperpixelBaseline(ctx, sp);
            const int64_t k = sp.count, n = p.Int("samples");
            auto generator = at::detail::createCPUGenerator(static_cast<uint64_t>(p.Int("seed")));
            torch::Tensor z = torch::zeros({n, k}, torch::kFloat64);
            z[0].fill_(1);
            torch::Tensor weights = torch::ones({n}, torch::kFloat64);
            weights.slice(0, 0, std::min<int64_t>(n, 2)).fill_(1e6);
            if (n > 2) {
              const torch::Tensor m = torch::arange(1, k, torch::kFloat64);
              const torch::Tensor kernel = (k - 1) / (m * (k - m));
              const torch::Tensor sizes = torch::multinomial(kernel, n - 2, true, generator) + 1;
              // m regions uniformly: those whose random key ranks below m in their row.
              const torch::Tensor ranks = torch::argsort(torch::argsort(torch::rand({n - 2, k}, generator, torch::kFloat64), /*dim=*/1, false), 1, false);
              z.slice(0, 2).copy_((ranks < sizes.unsqueeze(1)).to(torch::kFloat64));
            }
            if (n < k + 1)
              Log().warn("kernel-shap: {} samples for {} superpixels leave the fit underdetermined (the minimum-norm "
                         "solution is reported); give --samples of at least {}", n, k, 2 * k + 2);
            const torch::Tensor y = EvaluateSuperpixels(ctx, baseline, sp, z, p.Int("batch_size")).scores;
            const SurrogateFit fit = FitSurrogate(z, y, weights, Regression::kLeastSquares, 0);
            const double total = fit.coefficients.sum().item<double>();
            const double expected = n >= 2 ? (y[0] - y[1]).item<double>() : 0.0;
            ctx.metrics["samples"] = n;
            // R^2 over the sampled coalitions (the end points' weight would make any fit look perfect).
            double r2 = 1;
            if (n > 3) {
              const torch::Tensor ys = y.slice(0, 2), fitted = fit.intercept + z.slice(0, 2).matmul(fit.coefficients);
              const double spread = (ys - ys.mean()).square().sum().item<double>();
              if (spread > 0) r2 = 1 - (ys - fitted).square().sum().item<double>() / spread;
            }
            ctx.metrics["surrogate"] = {{"r2", r2}, {"intercept", fit.intercept}};
            ctx.metrics["efficiency"] = CompletenessMetrics(total, expected);
            return SuperpixelArtifacts(ctx, sp, "kernel_shap", fit.coefficients);
          }, BatchPass::kForward};
}

}  // namespace netlens
