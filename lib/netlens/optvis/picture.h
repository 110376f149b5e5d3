// Pictures as the optimization sees them (N x C x H x W, RGB or gray, values in [0, 1]) and as
// the model sees them (its channel order and normalization from its metadata).
#pragma once

#include <opencv2/core.hpp>
#include "netlens/model/libtorch.h"

#include "netlens/model/model.h"

namespace netlens::optvis {

// Pictures in [0, 1] (RGB, or 1 channel for gray models) -> the model's normalized input.
torch::Tensor ToModelInput(const torch::Tensor& pictures, const ModelMetadata& meta);

// An 8-bit BGR image -> 1 x C x H x W in [0, 1] (RGB, or gray for 1-channel models).
torch::Tensor PictureFromBgr(const cv::Mat& bgr, const ModelMetadata& meta, torch::Device device,
                             torch::ScalarType dtype);

// Bilinear resampling of N x C x h x w pictures (or feature maps) to height x width
// (align_corners false); the tensor itself when it already has that size.
torch::Tensor Resized(const torch::Tensor& pictures, int64_t height, int64_t width);

// Animations keep their frames at most this many pixels on the longer side: a GIF is for
// watching the optimization, and full-size frames of a 4096-pixel picture would hold 134 MB each.
constexpr int64_t kAnimationSide = 640;

// A frame of an animation: the pictures on the CPU, scaled down (area-averaged) to at most
// kAnimationSide on the longer side.
torch::Tensor AnimationFrame(const torch::Tensor& pictures);

// Total variation per sample: mean |p[y+1] - p[y]| + mean |p[x+1] - p[x]| (N values).
torch::Tensor TotalVariation(const torch::Tensor& pictures);

}  // namespace netlens::optvis
