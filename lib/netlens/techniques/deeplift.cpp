// DeepLIFT (Shrikumar, Greenside and Kundaje 2017) with the rescale rule, as Captum's DeepLift, and
// DeepLIFT-SHAP over a set of baselines, as Captum's DeepLiftShap. Input and reference run as the
// two halves of one batch through the lens under the deeplift rule: every rectifier (relu, relu_,
// relu6, hardtanh(0, x), in any form) passes grad_out * (y - y0) / (x - x0), every max_pool2d
// Captum's max-pooling rule (--max-pool sum: overlapping windows that share an arg-max add up what
// they route to it, which keeps summation-to-delta; --max-pool unpool: un-pooled by max_unpool2d
// as Captum's code does, where one window's value wins), the rest of the model (convolutions, linear layers, batch norm in
// eval, pooling by averages) its ordinary gradient, so that the input gradient of the input half
// is the multiplier m and
//   attr = (x - x0) * m,     deeplift-shap: attr = mean_i (x - b_i) * m_i.
// The manifest records summation-to-delta like integrated gradients' completeness: sum(attr)
// against f_t(x) - f_t(x0) (the mean over the baselines), exact for a network of rectifiers and
// linear maps.
#include <cmath>

#include "netlens/core/errors.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/common.h"
#include "netlens/techniques/rectifier_report.h"

namespace netlens {
namespace {

BackwardRule RuleOf(const TechniqueContext& ctx) {
  return ctx.params.Str("max_pool") == "unpool" ? BackwardRule::kDeepLiftCaptum : BackwardRule::kDeepLift;
}

struct DeepLiftResult {
  torch::Tensor attributions;          // (x_i - r_i) * m_i, one per pair
  torch::Tensor input_logits, reference_logits;  // f_t of each, from the same forward passes
};

// DeepLIFT of input/reference pairs (n x C x H x W each), `batch` pairs per pass.
DeepLiftResult DeepLiftPairs(TechniqueContext& ctx, const torch::Tensor& inputs, const torch::Tensor& references,
                             int64_t batch) {
  std::vector<torch::Tensor> attr, in_logits, ref_logits;
  for (int64_t start = 0; start < inputs.size(0); start += batch) {
    const int64_t end = std::min(inputs.size(0), start + batch), n = end - start;
    const torch::Tensor in = inputs.slice(0, start, end), ref = references.slice(0, start, end);
    const Gradients g = TargetGradients(ctx.model, torch::cat({in, ref}), ctx.target, {}, RuleOf(ctx));
    attr.push_back((in - ref) * g.input_grad.slice(0, 0, n));
    // The rules change only the backward pass: these are the model's logits.
    const torch::Tensor t = g.output.select(1, ctx.target).to(torch::kFloat64);
    in_logits.push_back(t.slice(0, 0, n));
    ref_logits.push_back(t.slice(0, n));
  }
  return {torch::cat(attr), torch::cat(in_logits), torch::cat(ref_logits)};
}

// sum(attr) against f_t(x) - mean_i f_t(r_i), from the attribution's own forward passes.
void RecordSummation(TechniqueContext& ctx, const DeepLiftResult& r) {
  const double expected = (r.input_logits.mean() - r.reference_logits.mean()).item<double>();
  ctx.metrics["summation_to_delta"] = CompletenessMetrics(r.attributions.sum().item<double>() / r.attributions.size(0), expected);
}

OptionTable DeepLiftOptions(bool several) {
  OptionTable options;
  if (several)
    options.push_back({"baselines", OptionType::kStringList,
                       "references, each zero, black, blur, uniform or an image file", Json::array({"zero", "blur", "uniform"}),
                       {}, {}, {}, false, "", true});
  else
    options.push_back({"baseline", OptionType::kString, "the reference: zero, black, blur, uniform, or an image file",
                       "zero", {}, {}, {}, false, "", true});
  options.push_back({"max_pool", OptionType::kString,
                     "max-pooling rule: sum (what overlapping windows route to a shared arg-max adds up; keeps "
                     "summation-to-delta) or unpool (max_unpool2d, as Captum's code: one window's value wins)",
                     "sum", {"sum", "unpool"}});
  options.push_back({"blur_sigma", OptionType::kFloat, "Gaussian sigma in pixels of the blur baseline", 10.0, {}, 0.1, 1000.0});
  options.push_back({"batch_size", OptionType::kInt, "input/reference pairs per forward/backward pass", 8, {}, 1.0, 2048.0});
  options.push_back({"seed", OptionType::kInt, "seed of the uniform baseline", 0, {}, 0.0, 4294967295.0});
  return options;
}

}  // namespace

TechniqueInfo DeepLiftTechnique() {
  return {"deeplift", "DeepLIFT (rescale rule): differences from a reference, propagated by multipliers",
          DeepLiftOptions(false),
          [](TechniqueContext& ctx) {
            const torch::Tensor& x = ctx.input.tensor;
            ctx.metrics["activations"] = RectifierReport(ctx.model, RuleOf(ctx));
            const torch::Tensor b = BaselineOf(ctx, ctx.params.Str("baseline"));
            const DeepLiftResult r = DeepLiftPairs(ctx, x, b, 1);
            RecordSummation(ctx, r);
            return std::vector<Artifact>{{"deeplift", r.attributions}};
          }, BatchPass::kForwardBackward};
}

TechniqueInfo DeepLiftShapTechnique() {
  return {"deeplift-shap", "DeepLIFT-SHAP: DeepLIFT averaged over a set of references", DeepLiftOptions(true),
          [](TechniqueContext& ctx) {
            const auto& p = ctx.params;
            const torch::Tensor& x = ctx.input.tensor;
            const std::vector<std::string> kinds = p.Strs("baselines");
            if (kinds.empty()) throw UsageError("deeplift-shap: --baselines is empty; give at least one (e.g. zero)");
            ctx.metrics["activations"] = RectifierReport(ctx.model, RuleOf(ctx));
            std::vector<torch::Tensor> set;
            for (const auto& kind : kinds) set.push_back(BaselineOf(ctx, kind));
            const torch::Tensor baselines = torch::cat(set);
            const int64_t batch = p.Int("batch_size");
            const DeepLiftResult r = DeepLiftPairs(ctx, x.expand_as(baselines).contiguous(), baselines, batch);
            RecordSummation(ctx, r);
            return std::vector<Artifact>{{"deeplift_shap", r.attributions.mean(0, true)}};
          }, BatchPass::kForwardBackward};
}

}  // namespace netlens
