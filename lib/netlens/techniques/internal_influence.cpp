// Internal influence (Leino et al., "Influence-Directed Explanations for Deep Convolutional
// Networks", 2018), as Captum's InternalInfluence: the gradient of the target at a layer,
// integrated along the path from the baseline, infl = sum_k w_k dF_t/dA(b + a_k (x - b)) with the
// nodes and weights of --method (integrated gradients' rule, not multiplied by any difference).
// Path points run in batches of --batch-size, one forward + backward each.
#include "netlens/core/errors.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/common.h"

namespace netlens {

TechniqueInfo InternalInfluenceTechnique() {
  OptionTable options = IntegrationOptions();
  options.insert(options.begin(), {"layer", OptionType::kString, "layer: a module path, conv-N or last-conv", "last-conv"});
  options.push_back(TokenLayoutOption());
  return {"internal-influence", "internal influence: a layer's gradient integrated along the path from a baseline",
          options,
          [](TechniqueContext& ctx) {
            const auto& p = ctx.params;
            const std::string layer = ResolveLayerOrTransformerDefault(ctx, "internal-influence");
            const auto [b, path, weights] = IntegrationPathOf(ctx, p.Int("steps"));
            const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
            const int64_t batch = p.Int("batch_size"), points = path.size(0);
            torch::Tensor influence;
            for (int64_t start = 0; start < points; start += batch) {
              const int64_t end = std::min(points, start + batch);
              const Gradients g = TargetGradients(ctx.model, path.slice(0, start, end), ctx.target, {layer},
                                                  BackwardRule::kVanilla, /*input_grad=*/false);
              const torch::Tensor& grads = g.layer_grads[0];
              std::vector<int64_t> shape(grads.dim(), 1);
              shape[0] = end - start;
              const torch::Tensor w = torch::tensor(std::vector<double>(weights.begin() + start, weights.begin() + end), opts)
                                          .to(grads.device(), grads.scalar_type()).view(shape);
              const torch::Tensor part = (w * grads).sum(0, true);
              influence = influence.defined() ? influence + part : part;
            }
            influence = LayerAsSpatial(ctx, "internal-influence", layer, influence).contiguous();
            Artifact map{"internal_influence", influence.sum(1, true), Artifact::Kind::kLayerMap, layer};
            Artifact units{"internal_influence_units", influence, Artifact::Kind::kRawOnly, layer};
            return std::vector<Artifact>{map, units};
          }, BatchPass::kForwardBackward};
}

}  // namespace netlens
