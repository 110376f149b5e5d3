// Gradient helpers shared by the techniques: one forward and one backward through the lens.
#pragma once

#include "netlens/model/libtorch.h"

#include <functional>
#include <string>
#include <vector>

#include "netlens/model/layout.h"
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
// at the input and at `layers` (resolved paths), in one forward and one backward pass. With
// `input_grad` false the backward pass stops at the earliest requested layer (autograd runs only
// what the requested gradients need) and `input_grad` of the result is undefined.
Gradients TargetGradients(Model& model, const torch::Tensor& input, int64_t target,
                          const std::vector<std::string>& layers,
                          BackwardRule rule = BackwardRule::kVanilla, bool input_grad = true);

// The same for the job's input and target(s): with ctx.targets defined, row i's score is its own
// class (-1: its top class, resolved from this pass' output and written back to ctx.targets), so
// the gradients stay per image; ctx.logits gets the pass' output.
Gradients TargetGradients(TechniqueContext& ctx, const std::vector<std::string>& layers,
                          BackwardRule rule = BackwardRule::kVanilla, bool input_grad = true);

// The input as a gradient pass feeds it to the model: a copy, channels-last for a float32 batch
// of pictures on the CPU (oneDNN's faster convolutions).
torch::Tensor PassInput(const torch::Tensor& input);

// A warning for the log and the job's manifest entry.
void Warn(TechniqueContext& ctx, const std::string& message);

// Logs once that the model's output does not depend on its input differentiably.
void WarnNoGradientPath(const Model& model);

// d objective / d x for any scalar objective of the captured activations, in one pass.
torch::Tensor InputGradientOf(Model& model, const torch::Tensor& input,
                              const std::vector<std::string>& layers, BackwardRule rule,
                              const std::function<torch::Tensor(const Lens::Capture&)>& objective);

// Per-sample gradients of the target logit for a batch of inputs (N x C x H x W), evaluated in
// chunks of `batch_size` samples (forward + backward each).
torch::Tensor BatchedInputGradients(Model& model, const torch::Tensor& inputs, int64_t target,
                                    BackwardRule rule, int64_t batch_size);

// Logits for a batch of inputs, without autograd, in chunks of `batch_size`.
torch::Tensor BatchedLogits(Model& model, const torch::Tensor& inputs, int64_t batch_size);

// Reproducible standard-normal noise shaped like `like`: drawn on the CPU from `seed`, then
// moved to `like`'s device and dtype, so a seed gives the same noise on every device.
torch::Tensor SeededNormal(const torch::Tensor& like, int64_t count, uint64_t seed);
torch::Tensor SeededUniform(const torch::Tensor& like, uint64_t seed);

// Grad-CAM at one layer (Selvaraju et al.; Captum's LayerGradCam without ReLU):
// w_k = mean_ij dA[k,i,j]; cam = sum_k w_k A[k]. Returns N x 1 x h x w.
torch::Tensor GradCam(const torch::Tensor& activation, const torch::Tensor& gradient);

// A layer's output `t` read as N x C x h x w through its spatial layout (model/layout.h), inferred
// from its shape and the input's size or given by the option `token_layout` where the technique
// has it; a layer with no grid throws UsageError naming `technique`, the shape and the override.
// Layouts other than nchw are logged once per layer.
torch::Tensor LayerAsSpatial(TechniqueContext& ctx, const std::string& technique, const std::string& layer,
                             const torch::Tensor& t);
// The layout LayerAsSpatial reads `t` with.
// `quiet`: neither logged nor recorded (a layer looked at, not explained).
SpatialLayout LayerLayout(TechniqueContext& ctx, const std::string& technique, const std::string& layer,
                          const torch::Tensor& t, bool quiet = false);

// The option `token_layout` (model/layout.h; "auto" infers the layout) of the layer techniques.
OptionSpec TokenLayoutOption();

// The layers a layer technique without --layer chooses from on a transformer: its LayerNorms after
// the last convolution (the patch embedding), in forward order; empty for a model with fewer than
// two (a CNN, ConvNeXt), which keeps "last-conv".
std::vector<std::string> TransformerCamCandidates(Model& model);

// On a transformer, the deepest of TransformerCamCandidates whose patch positions get the target's
// gradient (in ViT, the last block's first norm: deeper layers pass only the class token to the
// head), from one forward and backward pass over all of them, logged; "" for any other model.
std::string TransformerDefaultLayer(TechniqueContext& ctx, const std::string& technique);
// The index of the deepest of `candidates` for which reaches(i) holds (its patch positions get the
// target's gradient; the first when none does), logged as the transformer's default layer.
size_t PickTransformerDefault(const std::string& technique, const std::vector<std::string>& candidates,
                              const std::function<bool(size_t)>& reaches);

// The option `layer` (a single layer) resolved, or, when it is left at its default on a
// transformer, TransformerDefaultLayer.
std::string ResolveLayerOrTransformerDefault(TechniqueContext& ctx, const std::string& technique);

// The option `layer` of CAM techniques, resolved against the model ("last-conv" by default).
std::vector<std::string> ResolveLayers(Model& model, const std::vector<std::string>& names);

}  // namespace netlens
