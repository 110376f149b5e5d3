// The machinery of the perturbation techniques that switch whole regions of the image on and off
// (Captum's FeatureAblation with a feature mask, KernelShap, Lime): a segmentation of the input
// into k superpixels, the inputs a batch of on/off vectors z (n x k) stands for, and the spread
// of one value per superpixel back to the input's shape.
#pragma once

#include "netlens/model/libtorch.h"

#include <string>

#include "netlens/techniques/technique.h"

namespace netlens {

// Options of the segmentation and the baseline, shared by feature-ablation, kernel-shap and lime:
// segmentation (slico, slic, mslic: OpenCV ximgproc; grid: square tiles), segments, compactness,
// feature_mask (a .npy of labels that replaces the segmentation), baseline, blur_sigma, seed.
OptionTable SuperpixelOptions();

struct Superpixels {
  torch::Tensor labels;  // H x W int64 in [0, count), on the input's device
  int64_t count = 0;
  torch::Tensor sizes;   // count, int64: pixels per superpixel
};

// Segments the picture the model sees per the options, or reads --feature-mask; labels are made
// contiguous. Throws UsageError, with the remedy, when fewer than two superpixels result. Logs
// what it did (method, parameters, count, smallest and largest superpixel).
Superpixels Segment(TechniqueContext& ctx, const std::string& technique);

// The input with superpixels switched on (z = 1: the input) or off (z = 0: the baseline), one
// per row of z (n x k, any dtype): n x C x H x W.
torch::Tensor ComposeInputs(const torch::Tensor& x, const torch::Tensor& baseline, const Superpixels& sp,
                            const torch::Tensor& z);

// One value per superpixel (k) spread over its pixels and every channel: 1 x C x H x W like `x`.
torch::Tensor SpreadOverSuperpixels(const torch::Tensor& values, const Superpixels& sp, const torch::Tensor& x);

// A technique's outputs: its map `<name>` (`values`, one per superpixel, spread over its pixels),
// the segmentation as data (`<name>_superpixels.npy`, the labels) and as a picture
// (`<name>_segments`: the input with the superpixel borders drawn).
std::vector<Artifact> SuperpixelArtifacts(const TechniqueContext& ctx, const Superpixels& sp, const std::string& name,
                                          const torch::Tensor& values);

// The input with every superpixel switched off: --baseline as integrated-gradients reads it, or
// `mean`, each superpixel filled with its own mean (per channel).
torch::Tensor SuperpixelBaseline(TechniqueContext& ctx, const Superpixels& sp);

// What the model says of the inputs z stands for, evaluated in chunks of `batch_size` without
// autograd: the target logit of each (n, float64, CPU) and, with `distances`, the distance of
// each input to the unperturbed one (Lime's similarity kernel reads one of them).
struct SuperpixelEvaluation {
  torch::Tensor scores;
  torch::Tensor cosine_distance;     // 1 - cos(x, x'), inputs flattened
  torch::Tensor euclidean_distance;  // ||x - x'||
};
SuperpixelEvaluation EvaluateSuperpixels(TechniqueContext& ctx, const torch::Tensor& baseline, const Superpixels& sp,
                                         const torch::Tensor& z, int64_t batch_size, bool distances = false);

}  // namespace netlens
