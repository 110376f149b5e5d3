#include "netlens/techniques/common.h"

#include "netlens/core/errors.h"

namespace netlens {

Gradients TargetGradients(Model& model, const torch::Tensor& input, int64_t target,
                          const std::vector<std::string>& layers, BackwardRule rule) {
  torch::Tensor x = input.detach().clone().requires_grad_(true);
  Lens::Capture capture = model.lens().Forward(x, layers, rule);
  if (target < 0 || target >= capture.output.size(1))
    throw UsageError("target " + std::to_string(target) + " is out of range: the model has " +
                     std::to_string(capture.output.size(1)) + " classes");
  const torch::Tensor score = capture.output.select(1, target).sum();
  std::vector<torch::Tensor> inputs{x};
  for (const auto& a : capture.activations) inputs.push_back(a);
  auto grads = torch::autograd::grad({score}, inputs, {}, /*retain_graph=*/false,
                                     /*create_graph=*/false, /*allow_unused=*/true);
  Gradients out;
  out.output = capture.output.detach();
  out.input_grad = grads[0].defined() ? grads[0] : torch::zeros_like(x);
  for (size_t i = 0; i < capture.activations.size(); ++i) {
    const auto& a = capture.activations[i];
    out.activations.push_back(a.detach());
    out.layer_grads.push_back(grads[i + 1].defined() ? grads[i + 1] : torch::zeros_like(a));
  }
  return out;
}

torch::Tensor GradCam(const torch::Tensor& activation, const torch::Tensor& gradient) {
  if (activation.dim() != 4)
    throw UsageError("Grad-CAM needs a layer with N x K x h x w output; this one has shape " +
                     c10::str(activation.sizes()));
  const torch::Tensor weights = gradient.mean({2, 3}, /*keepdim=*/true);
  return (weights * activation).sum(1, /*keepdim=*/true);
}

std::vector<std::string> ResolveLayers(Model& model, const std::vector<std::string>& names) {
  std::vector<std::string> paths;
  for (const auto& name : names) paths.push_back(model.lens().Resolve(name));
  return paths;
}

}  // namespace netlens
