// Layer conductance (Dhamdhere, Sundararajan and Yan, "How Important Is a Neuron?", ICLR 2019),
// as Captum's LayerConductance: with the n + 1 nodes a_0 < .. < a_n of the integration rule
// (Captum takes n_steps + 1 of them) and path points p_k = b + a_k (x - b),
//   cond = sum_{k < n} dF_t/dA(p_k) * (A(p_{k+1}) - A(p_k)),
// the share of integrated gradients' total that flows through each unit of the layer. Summed over
// the whole layer it approximates F_t(x) - F_t(b) when every path from input to output crosses the
// layer; the manifest reports that sum next to the logit difference. Path points run in batches,
// one forward + backward each, and only the previous point is kept between batches.
#include "netlens/core/errors.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/common.h"

namespace netlens {

TechniqueInfo LayerConductanceTechnique() {
  OptionTable options = IntegrationOptions();
  options.insert(options.begin(), {"layer", OptionType::kString, "layer: a module path, conv-N or last-conv", "last-conv"});
  options.push_back(TokenLayoutOption());
  return {"layer-conductance", "conductance of a layer's units: integrated gradients through the layer", options,
          [](TechniqueContext& ctx) {
            const auto& p = ctx.params;
            const torch::Tensor& x = ctx.input.tensor;
            const std::string layer = ResolveLayerOrTransformerDefault(ctx, "layer-conductance");
            const auto [b, path, weights] = IntegrationPathOf(ctx, p.Int("steps") + 1);
            const int64_t batch = p.Int("batch_size"), points = path.size(0);
            torch::Tensor conductance, last_activation, last_grad;
            for (int64_t start = 0; start < points; start += batch) {
              const Gradients g = TargetGradients(ctx.model, path.slice(0, start, std::min(points, start + batch)),
                                                  ctx.target, {layer}, BackwardRule::kVanilla, /*input_grad=*/false);
              torch::Tensor acts = g.activations[0], grads = g.layer_grads[0];
              if (last_activation.defined()) {
                acts = torch::cat({last_activation, acts});
                grads = torch::cat({last_grad, grads});
              }
              const int64_t m = acts.size(0);
              if (m > 1) {
                const torch::Tensor part = (grads.slice(0, 0, m - 1) * (acts.slice(0, 1, m) - acts.slice(0, 0, m - 1))).sum(0, true);
                conductance = conductance.defined() ? conductance + part : part;
              }
              last_activation = acts.slice(0, m - 1, m);
              last_grad = grads.slice(0, m - 1, m);
            }
            const torch::Tensor ends = ctx.model.Logits(torch::cat({x, b}, 0)).select(1, ctx.target);
            const double expected = (ends[0] - ends[1]).item<double>();
            const double total = conductance.sum().item<double>();  // every unit, prefix tokens included
            ctx.metrics["completeness"] = CompletenessMetrics(total, expected);
            conductance = LayerAsSpatial(ctx, "layer-conductance", layer, conductance).contiguous();
            Artifact map{"layer_conductance", conductance.sum(1, true), Artifact::Kind::kLayerMap, layer};
            Artifact units{"layer_conductance_units", conductance, Artifact::Kind::kRawOnly, layer};
            return std::vector<Artifact>{map, units};
          }, BatchPass::kForwardBackward};
}

}  // namespace netlens
