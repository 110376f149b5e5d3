// Gradient helpers shared by the techniques: one forward and one backward through the lens.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "netlens/model/model.h"
#include "netlens/techniques/technique.h"

namespace netlens {

struct Gradients {
  torch::Tensor output;                    // model output (logits)
  torch::Tensor input_grad;                // d f_t / d x, same shape as x
  std::vector<torch::Tensor> activations;  // A at each requested layer (detached)
  std::vector<torch::Tensor> layer_grads;  // d f_t / d A at each requested layer
};

// Gradients of the target logit, summed over the batch (so each sample gets its own gradient),
// at the input and at `layers` (resolved paths), in one forward and one backward pass.
Gradients TargetGradients(Model& model, const torch::Tensor& input, int64_t target,
                          const std::vector<std::string>& layers,
                          BackwardRule rule = BackwardRule::kVanilla);

// Grad-CAM at one layer (Selvaraju et al.; Captum's LayerGradCam without ReLU):
// w_k = mean_ij dA[k,i,j]; cam = sum_k w_k A[k]. Returns N x 1 x h x w.
torch::Tensor GradCam(const torch::Tensor& activation, const torch::Tensor& gradient);

// The option `layer` of CAM techniques, resolved against the model ("last-conv" by default).
std::vector<std::string> ResolveLayers(Model& model, const std::vector<std::string>& names);

}  // namespace netlens
