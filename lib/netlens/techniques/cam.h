// Shared machinery of the class-activation-map family (pytorch-grad-cam's names and formulas).
// Every CAM technique takes `layer` (one or many; all gradient-based ones share one forward and
// one backward pass) and writes one raw map per layer (N x 1 x h x w, no ReLU) plus, for several
// layers, their fusion: mean over layers of min-max scaled, input-sized relu(cam).
#pragma once

#include <string>
#include <vector>

#include "netlens/model/layout.h"
#include "netlens/techniques/common.h"
#include "netlens/techniques/technique.h"

namespace netlens {

// The options every CAM technique has: layer, interpolation, token_layout; plus `extra`.
OptionTable CamOptions(OptionTable extra = {});

// cam from activation A and gradient dA at one layer (both read as N x K x h x w through the
// layer's layout: a token or channels-last layer as its grid).
using GradientCamFn = torch::Tensor (*)(const torch::Tensor& A, const torch::Tensor& dA);

// Runs a gradient-based CAM at the requested layers with one forward and one backward pass; on a
// transformer without --layer, at the deepest of TransformerCamCandidates whose patch positions
// get a gradient (one pass over all of them).
std::vector<Artifact> RunGradientCam(TechniqueContext& ctx, const std::string& name, GradientCamFn fn);

// cam from the model, the input and one layer's activation A read as N x K x h x w through
// `layout` (gradient-free CAMs).
using PerturbationCamFn = torch::Tensor (*)(TechniqueContext& ctx, const std::string& layer,
                                            const SpatialLayout& layout, const torch::Tensor& A);
std::vector<Artifact> RunPerturbationCam(TechniqueContext& ctx, const std::string& name,
                                         PerturbationCamFn fn);

// pytorch-grad-cam's multi-layer aggregation, N x 1 x H x W.
torch::Tensor FuseCams(const std::vector<torch::Tensor>& cams, int64_t height, int64_t width);

TechniqueInfo GradCamPlusPlusTechnique();
TechniqueInfo XGradCamTechnique();
TechniqueInfo LayerCamTechnique();
TechniqueInfo HiResCamTechnique();
TechniqueInfo ScoreCamTechnique();
TechniqueInfo AblationCamTechnique();
TechniqueInfo EigenCamTechnique();

}  // namespace netlens
