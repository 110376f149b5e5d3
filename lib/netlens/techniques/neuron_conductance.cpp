// Neuron conductance (Dhamdhere, Sundararajan and Yan, "How Important Is a Neuron?", ICLR 2019),
// as Captum's NeuronConductance: how much each input feature contributes to the target through
// one unit n = (channel, i, j) of a layer. With the path points p_k = b + a_k (x - b) and weights
// w_k of the integration rule (Captum's default for this method: riemann_trapezoid),
//   attr = (x - b) * sum_k w_k * dF_t/dA_n(p_k) * dA_n/dx(p_k).
// Summed over the input it is the unit's conductance (layer-conductance's value for n). Each
// batch of path points runs one forward and two backward passes (the target to the unit, the
// unit to the input). Without --channel the unit is the layer's most active channel at the
// input, and without --neuron the position where that channel peaks; both are logged.
#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/common.h"

namespace netlens {

TechniqueInfo NeuronConductanceTechnique() {
  OptionTable options = IntegrationOptions();
  for (auto& spec : options)
    if (spec.key == "method") spec.default_value = "riemann_trapezoid";
  options.insert(options.begin(), {
      {"layer", OptionType::kString, "layer: a module path, conv-N or last-conv", "last-conv"},
      {"channel", OptionType::kInt, "channel of the unit (default: the most active one at the input)", Json(), {},
       0.0, 1e9},
      {"neuron", OptionType::kIntList, "position I,J of the unit (default: where the channel peaks)"},
      TokenLayoutOption(),
  });
  return {"neuron-conductance", "neuron conductance: each input feature's share of the target through one unit",
          options,
          [](TechniqueContext& ctx) {
            const auto& p = ctx.params;
            const torch::Tensor& x = ctx.input.tensor;
            const std::string layer = ResolveLayerOrTransformerDefault(ctx, "neuron-conductance");
            torch::Tensor native;
            {
              torch::NoGradGuard no_grad;
              native = ctx.model.lens().Forward(x, {layer}, BackwardRule::kVanilla, false).activations[0];
            }
            // Units as (channel, i, j) of the layer read as N x C x h x w (a token or channels-last
            // layer through its layout; one without a grid is refused, naming --token-layout).
            const SpatialLayout layout = LayerLayout(ctx, "neuron-conductance", layer, native);
            const torch::Tensor at_input = ToSpatial(native, layout);
            const int64_t channels = at_input.size(1);
            const int64_t channel = p.IsSet("channel") ? p.Int("channel") : at_input[0].mean({1, 2}).argmax().item<int64_t>();
            if (channel >= channels)
              throw UsageError("neuron-conductance: channel " + std::to_string(channel) + " is out of range: " + layer +
                               " has " + std::to_string(channels) + " channels");
            std::vector<int64_t> unit;
            if (p.IsSet("neuron")) {
              unit = p.Ints("neuron");
              if (unit.size() != 2 || unit[0] >= at_input.size(2) || unit[1] >= at_input.size(3))
                throw UsageError("neuron-conductance: --neuron takes I,J within the layer's " +
                                 std::to_string(at_input.size(2)) + "x" + std::to_string(at_input.size(3)) + " positions");
            } else {
              const int64_t peak = at_input[0][channel].flatten().argmax().item<int64_t>();
              unit = {peak / at_input.size(3), peak % at_input.size(3)};
            }
            if (!p.IsSet("channel") || !p.IsSet("neuron"))
              Log().info("neuron-conductance: unit {}:{}@{},{} (activation {:.4g} at the input)", layer, channel,
                         unit[0], unit[1], at_input[0][channel][unit[0]][unit[1]].item<double>());
            const auto [b, path, weights] = IntegrationPathOf(ctx, p.Int("steps"));
            const torch::Tensor w = torch::tensor(weights, torch::kFloat64).to(x.device(), x.scalar_type());
            const int64_t batch = p.Int("batch_size"), points = path.size(0);
            torch::Tensor total = torch::zeros_like(x);
            double unit_conductance = 0;
            for (int64_t start = 0; start < points; start += batch) {
              const int64_t end = std::min(points, start + batch);
              const torch::Tensor z = path.slice(0, start, end).detach().clone().requires_grad_(true);
              const Lens::Capture c = ctx.model.lens().Forward(z, {layer}, BackwardRule::kVanilla, true);
              const torch::Tensor unit_out =
                  ToSpatial(c.activations[0], layout).select(1, channel).select(1, unit[0]).select(1, unit[1]);
              const torch::Tensor mid = torch::autograd::grad({c.output.select(1, ctx.target).sum()}, {c.activations[0]},
                                                              {}, /*retain_graph=*/true, false, /*allow_unused=*/true)[0];
              const torch::Tensor d_unit = mid.defined() ? ToSpatial(mid, layout).select(1, channel).select(1, unit[0]).select(1, unit[1])
                                                         : torch::zeros_like(unit_out);
              torch::Tensor d_input = torch::autograd::grad({unit_out.sum()}, {z}, {}, false, false, true)[0];
              if (!d_input.defined()) d_input = torch::zeros_like(z);
              const torch::Tensor scale = (w.slice(0, start, end) * d_unit.detach()).view({-1, 1, 1, 1});
              total += (scale * d_input).sum(0, true);
            }
            const torch::Tensor attr = (x - b) * total;
            unit_conductance = attr.sum().item<double>();
            ctx.metrics["unit"] = {{"layer", layer}, {"channel", channel}, {"position", unit}};
            ctx.metrics["unit_conductance"] = unit_conductance;
            return std::vector<Artifact>{{"neuron_conductance", attr}};
          }, BatchPass::kForwardBackward};
}

}  // namespace netlens
