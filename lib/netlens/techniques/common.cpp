#include "netlens/techniques/common.h"

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>
#include <set>

#include "netlens/core/errors.h"
#include "netlens/core/log.h"
#include "netlens/core/strings.h"

namespace netlens {

torch::Tensor PassInput(const torch::Tensor& input) {
  // float32 on the CPU: a channels-last input takes oneDNN's faster convolutions (about 2x per
  // pass on SqueezeNet here).
  const bool channels_last = input.dim() == 4 && input.device().is_cpu() && input.scalar_type() == torch::kFloat32;
  return input.detach().clone(channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous);
}

namespace {

// One forward and one backward pass of score(output), the gradients at the input and `layers`.
Gradients ScoreGradients(Model& model, const torch::Tensor& input, const std::vector<std::string>& layers,
                         BackwardRule rule, bool input_grad,
                         const std::function<torch::Tensor(const torch::Tensor&)>& score_of) {
  // With the input gradient (or another rule) the input requires grad, so that every layer output
  // is on the autograd graph, and asking only for the layers' gradients keeps the engine from
  // running the backward below them.
  // Results are returned in the usual contiguous layout.
  torch::Tensor x = PassInput(input);
  // Gradients at layers only: the lens may run what precedes them without autograd.
  Lens::Capture capture = !input_grad && rule == BackwardRule::kVanilla && !layers.empty()
                              ? model.lens().ForwardForLayerGradients(x, layers)
                              : model.lens().Forward(x.requires_grad_(true), layers, rule);
  const torch::Tensor score = score_of(capture.output);
  const size_t first = input_grad ? 1 : 0;  // index of the first layer in `inputs`
  std::vector<torch::Tensor> inputs;
  if (input_grad) inputs.push_back(x);
  for (const auto& a : capture.activations) inputs.push_back(a);
  Gradients out;
  out.output = capture.output.detach();
  std::vector<torch::Tensor> grads(inputs.size());
  if (score.requires_grad() && !inputs.empty()) {
    grads = torch::autograd::grad({score}, inputs, {}, /*retain_graph=*/false,
                                  /*create_graph=*/false, /*allow_unused=*/true);
  } else if (!score.requires_grad()) {
    WarnNoGradientPath(model);
  }
  if (input_grad) out.input_grad = grads[0].defined() ? grads[0].contiguous() : torch::zeros_like(input);
  for (size_t i = 0; i < capture.activations.size(); ++i) {
    const auto& a = capture.activations[i];
    out.activations.push_back(a.detach().contiguous());
    out.layer_grads.push_back(grads[i + first].defined() ? grads[i + first].contiguous()
                                                        : torch::zeros_like(a).contiguous());
  }
  return out;
}

void CheckTarget(int64_t target, int64_t classes) {
  if (target < 0 || target >= classes)
    throw UsageError("target " + std::to_string(target) + " is out of range: the model has " +
                     std::to_string(classes) + " classes");
}

}  // namespace

Gradients TargetGradients(Model& model, const torch::Tensor& input, int64_t target,
                          const std::vector<std::string>& layers, BackwardRule rule, bool input_grad) {
  return ScoreGradients(model, input, layers, rule, input_grad, [&](const torch::Tensor& output) {
    CheckTarget(target, output.size(1));
    return output.select(1, target).sum();
  });
}

Gradients TargetGradients(TechniqueContext& ctx, const std::vector<std::string>& layers, BackwardRule rule,
                          bool input_grad) {
  Gradients g = ScoreGradients(ctx.model, ctx.input.tensor, layers, rule, input_grad, [&](const torch::Tensor& output) {
    if (!ctx.targets.defined()) {
      CheckTarget(ctx.target, output.size(1));
      return output.select(1, ctx.target).sum();
    }
    // Row i's own class; -1: the row's top class, from this very pass.
    torch::Tensor targets = ctx.targets.to(output.device(), torch::kLong).view({-1});
    const torch::Tensor top = std::get<1>(output.detach().max(1));
    targets = torch::where(targets < 0, top, targets);
    for (int64_t i = 0; i < targets.size(0); ++i) CheckTarget(targets[i].item<int64_t>(), output.size(1));
    ctx.targets = targets.cpu();
    return output.gather(1, targets.view({-1, 1})).sum();
  });
  ctx.logits = g.output;
  return g;
}

void Warn(TechniqueContext& ctx, const std::string& message) {
  Log().warn("{}", message);
  ctx.warnings.push_back(message);
}

void WarnNoGradientPath(const Model& model) {
  static std::once_flag once;
  std::call_once(once, [&] {
    Log().warn("the output of {} does not depend on its input through differentiable operations: "
               "every gradient is zero (a model that ignores its input, or ends in argmax/rounding)",
               model.meta().name);
  });
}

torch::Tensor InputGradientOf(Model& model, const torch::Tensor& input,
                              const std::vector<std::string>& layers, BackwardRule rule,
                              const std::function<torch::Tensor(const Lens::Capture&)>& objective) {
  torch::Tensor x = input.detach().clone().requires_grad_(true);
  const Lens::Capture capture = model.lens().Forward(x, layers, rule);
  const torch::Tensor value = objective(capture);
  if (!value.requires_grad()) {
    WarnNoGradientPath(model);
    return torch::zeros_like(x);
  }
  auto grads = torch::autograd::grad({value}, {x}, {}, false, false, true);
  return grads[0].defined() ? grads[0] : torch::zeros_like(x);
}

torch::Tensor BatchedInputGradients(Model& model, const torch::Tensor& inputs, int64_t target,
                                    BackwardRule rule, int64_t batch_size) {
  // float32 on the CPU: channels-last batches take oneDNN's faster convolutions (~15% per pass
  // on ResNet-18 here); the gradients agree with the contiguous layout to float32 rounding.
  const bool channels_last = inputs.dim() == 4 && inputs.device().is_cpu() &&
                             inputs.scalar_type() == torch::kFloat32;
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < inputs.size(0); start += batch_size) {
    torch::Tensor chunk = inputs.slice(0, start, std::min(start + batch_size, inputs.size(0)));
    if (channels_last) chunk = chunk.contiguous(torch::MemoryFormat::ChannelsLast);
    parts.push_back(TargetGradients(model, chunk, target, {}, rule).input_grad);
  }
  return torch::cat(parts, 0).contiguous();
}

torch::Tensor BatchedLogits(Model& model, const torch::Tensor& inputs, int64_t batch_size) {
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < inputs.size(0); start += batch_size)
    parts.push_back(model.Logits(inputs.slice(0, start, std::min(start + batch_size, inputs.size(0)))));
  return torch::cat(parts, 0);
}

torch::Tensor SeededNormal(const torch::Tensor& like, int64_t count, uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  std::vector<int64_t> shape = like.sizes().vec();
  shape[0] = count;
  return torch::randn(shape, generator, torch::kFloat64).to(like.device(), like.scalar_type());
}

torch::Tensor SeededUniform(const torch::Tensor& like, uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  return torch::rand(like.sizes(), generator, torch::kFloat64).to(like.device(), like.scalar_type());
}

torch::Tensor GradCam(const torch::Tensor& activation, const torch::Tensor& gradient) {
  if (activation.dim() != 4)
    throw UsageError("Grad-CAM needs a layer with N x K x h x w output; this one has shape " +
                     c10::str(activation.sizes()));
  const torch::Tensor weights = gradient.mean({2, 3}, /*keepdim=*/true);
  return (weights * activation).sum(1, /*keepdim=*/true);
}

SpatialLayout LayerLayout(TechniqueContext& ctx, const std::string& technique, const std::string& layer,
                          const torch::Tensor& t, bool quiet) {
  const std::string given = ctx.params.Declares("token_layout") ? ctx.params.Str("token_layout") : "";
  const torch::Tensor& x = ctx.input.tensor;
  const SpatialLayout layout = InferSpatialLayout(t.sizes().vec(), x.size(2), x.size(3), given == "auto" ? "" : given);
  if (!layout.spatial())
    throw UsageError(technique + " needs a layer with spatial positions; " + Quote(layer) + " has none: " +
                     layout.why_not + " (" +
                     (ctx.params.Declares("token_layout") ? "--token-layout nchw|nhwc|tokens:P says how to read it; " : "") +
                     "netlens inspect lists the layers and their layouts)");
  if (!quiet && (layout.kind != SpatialLayout::Kind::kNCHW || layout.ambiguous)) {
    ctx.metrics["layer_layouts"][layer] = layout.Describe();
    static std::mutex mutex;
    static std::set<std::string> logged;
    std::lock_guard<std::mutex> lock(mutex);
    if (logged.insert(ctx.model.path() + "|" + layer + "|" + layout.Describe()).second)
      Log().info("{}: {} {} read as {} ({} x {} positions{}){}", technique, layer, c10::str(t.sizes()),
                 layout.Describe(), layout.h, layout.w,
                 layout.prefix > 0 ? ", " + std::to_string(layout.prefix) + " prefix token(s) left out" : "",
                 layout.ambiguous ? "; another layout fits this shape too: --token-layout chooses" : "");
  }
  return layout;
}

torch::Tensor LayerAsSpatial(TechniqueContext& ctx, const std::string& technique, const std::string& layer,
                             const torch::Tensor& t) {
  return ToSpatial(t, LayerLayout(ctx, technique, layer, t));
}

std::vector<std::string> ResolveLayers(Model& model, const std::vector<std::string>& names) {
  std::vector<std::string> paths;
  for (const auto& name : names) paths.push_back(model.lens().Resolve(name));
  return paths;
}

OptionSpec TokenLayoutOption() {
  return {"token_layout", OptionType::kString,
          "how the layer keeps its positions: auto (from its shape and the input size), nchw, nhwc, "
          "tokens or tokens:P (P prefix tokens, e.g. tokens:1 for a class token)",
          "auto"};
}

std::vector<std::string> TransformerCamCandidates(Model& model) {
  const auto& layers = model.lens().layers();
  std::string last_conv;  // the lens' own "last-conv"; none: every layer counts
  try {
    last_conv = model.lens().Resolve("last-conv");
  } catch (const UsageError&) {
  }
  size_t from = 0;
  for (size_t i = 0; i < layers.size() && !last_conv.empty(); ++i)
    if (layers[i].path == last_conv) from = i + 1;
  std::vector<std::string> norms;
  for (size_t i = from; i < layers.size(); ++i)
    if (layers[i].capturable && layers[i].type == "LayerNorm" &&
        (layers[i].shape.size() == 3 || layers[i].shape.size() == 4))
      norms.push_back(layers[i].path);
  if (norms.size() < 2) norms.clear();
  return norms;
}

std::string TransformerDefaultLayer(TechniqueContext& ctx, const std::string& technique) {
  const std::vector<std::string> candidates = TransformerCamCandidates(ctx.model);
  if (candidates.empty()) return "";
  const Gradients g = TargetGradients(ctx.model, ctx.input.tensor, ctx.target, candidates, BackwardRule::kVanilla,
                                      /*input_grad=*/false);
  return candidates[PickTransformerDefault(technique, candidates, [&](size_t i) {
    return ToSpatial(g.layer_grads[i], LayerLayout(ctx, technique, candidates[i], g.activations[i], /*quiet=*/true))
               .abs().max().item<double>() > 0;
  })];
}

size_t PickTransformerDefault(const std::string& technique, const std::vector<std::string>& candidates,
                              const std::function<bool(size_t)>& reaches) {
  size_t pick = candidates.size() - 1;
  while (pick > 0 && !reaches(pick)) --pick;
  Log().info("{}: no --layer given; the model is a transformer (normalizations after its last "
             "convolution): {} is the deepest whose patch positions reach the target{}",
             technique, candidates[pick], pick + 1 < candidates.size() ? " (deeper ones pass only the prefix tokens)" : "");
  return pick;
}

std::string ResolveLayerOrTransformerDefault(TechniqueContext& ctx, const std::string& technique) {
  if (!ctx.params.IsSet("layer")) {
    const std::string layer = TransformerDefaultLayer(ctx, technique);
    if (!layer.empty()) return layer;
  }
  return ctx.model.lens().Resolve(ctx.params.Str("layer"));
}

}  // namespace netlens
