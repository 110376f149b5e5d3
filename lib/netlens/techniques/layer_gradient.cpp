// Layer / channel gradient: the input gradient of sum |A[channel]| at a layer (or of one neuron
// A[channel, i, j], the centre unit by default with --neuron center), vanilla or guided. Shows
// which input pixels drive a unit, independent of any class.
#include "netlens/core/errors.h"
#include "netlens/techniques/attribution_family.h"
#include "netlens/techniques/common.h"
#include "netlens/techniques/rectifier_report.h"

namespace netlens {

TechniqueInfo LayerGradientTechnique() {
  OptionTable options{
      {"layer", OptionType::kString, "layer: a module path, conv-N or last-conv", "last-conv"},
      {"channel", OptionType::kInt, "channel of the layer", 0, {}, 0.0, 1e9},
      {"neuron", OptionType::kIntList,
       "one unit instead of the whole channel: I,J (row, column) at the layer's resolution"},
      {"guided", OptionType::kBool, "use guided-backprop gradients", true},
      TokenLayoutOption(),
  };
  return {"layer-gradient", "input gradient of one channel's (or neuron's) activation", options,
          [](TechniqueContext& ctx) {
            const auto& p = ctx.params;
            const std::string layer = ResolveLayerOrTransformerDefault(ctx, "layer-gradient");
            // Channels and positions as N x C x h x w (a token or channels-last layer through its
            // layout); a flat N x C layer as it is.
            const auto& native = ctx.model.lens().Info(layer).shape;
            const bool flat = native.size() == 2;
            std::vector<int64_t> shape = native;
            if (!flat) {
              const SpatialLayout layout = LayerLayout(ctx, "layer-gradient", layer, torch::empty(native, torch::kMeta));
              shape = {native[0], layout.channels, layout.h, layout.w};
            }
            const int64_t channel = p.Int("channel");
            if (shape.size() < 2 || channel >= shape[1])
              throw UsageError("layer-gradient: channel " + std::to_string(channel) + " is out of range: " +
                               layer + " has " + std::to_string(shape.size() < 2 ? 0 : shape[1]) + " channels");
            std::vector<int64_t> neuron;
            if (p.IsSet("neuron")) {
              neuron = p.Ints("neuron");
              if (neuron.size() != 2 || shape.size() != 4 || neuron[0] >= shape[2] || neuron[1] >= shape[3])
                throw UsageError("layer-gradient: --neuron takes I,J within the layer's " +
                                 std::to_string(shape.size() == 4 ? shape[2] : 0) + "x" +
                                 std::to_string(shape.size() == 4 ? shape[3] : 0) + " grid");
            }
            const auto rule = p.Bool("guided") ? BackwardRule::kGuided : BackwardRule::kVanilla;
            if (p.Bool("guided")) ctx.metrics["activations"] = RectifierReport(ctx.model, rule);
            const torch::Tensor g = InputGradientOf(
                ctx.model, ctx.input.tensor, {layer}, rule, [&](const Lens::Capture& c) {
                  const torch::Tensor& native_a = c.activations[0];
                  torch::Tensor a = (flat ? native_a : LayerAsSpatial(ctx, "layer-gradient", layer, native_a)).select(1, channel);
                  if (!neuron.empty()) return a.select(1, neuron[0]).select(1, neuron[1]).sum();
                  return a.abs().sum();
                });
            Artifact out{"layer_gradient", g, Artifact::Kind::kInputAttribution, layer};
            out.pos_neg = true;
            ctx.metrics["layer"] = layer;
            ctx.metrics["channel"] = channel;
            return std::vector<Artifact>{out};
          }};
}

}  // namespace netlens
