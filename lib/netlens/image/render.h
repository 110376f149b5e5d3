// Turning raw attribution tensors into pictures. All functions take CPU or CUDA tensors of any
// floating dtype and return 8-bit BGR images (cv::Mat) at the tensor's spatial size unless said.
#pragma once

#include <opencv2/core.hpp>
#include "netlens/model/libtorch.h"

#include <string>
#include <vector>

namespace netlens {

// Captum's outlier clipping for visualization: the threshold at which the cumulative sum of the
// sorted |values| reaches (100 - outlier_percent)% of their total. Captum's default is 2.
// Returns a positive number (1 when the map is all zeros).
double CumulativeThreshold(const torch::Tensor& values, double outlier_percent);

// Map values to [0, 1]: |x| / threshold, clipped (`map` of any shape).
torch::Tensor NormalizeAbs(const torch::Tensor& map, double outlier_percent);
// Map values to [-1, 1]: x / threshold(|x|), clipped.
torch::Tensor NormalizeSigned(const torch::Tensor& map, double outlier_percent);
// (x - min) / (max - min), or zeros for a constant map.
torch::Tensor MinMax(const torch::Tensor& map);

// H x W in [0, 1] -> 8-bit gray, 3 channels.
cv::Mat GrayImage(const torch::Tensor& map01);
// H x W in [0, 1] -> JET heat map.
cv::Mat HeatImage(const torch::Tensor& map01);
// H x W in [-1, 1] -> diverging blue (negative) / white (0) / red (positive).
cv::Mat DivergingImage(const torch::Tensor& map11);
// C x H x W in [0, 1] -> colour image (C = 3 in RGB order; any other C: the gray mean).
cv::Mat ColorImage(const torch::Tensor& chw01);
// Blend a heat map onto a picture of the same size: alpha * heat + (1 - alpha) * base.
cv::Mat Overlay(const cv::Mat& base_bgr, const cv::Mat& heat_bgr, double alpha = 0.5);
// Tiles (8-bit BGR, one size) in a grid of `columns` (0: about square) on white, each with its
// caption (may be empty) in a strip below it.
cv::Mat GridImage(const std::vector<cv::Mat>& tiles, const std::vector<std::string>& captions,
                  int columns = 0);
// The heat-map view of an input attribution (C x H x W): sum |g| over channels, outlier-clipped
// (Captum's rendering), in JET over `display`.
cv::Mat AttributionHeatmap(const torch::Tensor& chw, const cv::Mat& display, double outlier_percent);
// The view of a layer map (h x w, a CAM): ReLU, upsampled to `display`'s size, scaled to [0, 1]
// (pytorch-grad-cam's scaling). Returns that map (H x W, float64, CPU).
torch::Tensor CamToDisplay(const torch::Tensor& hw, const cv::Mat& display, bool nearest);

// An 8-bit BGR image as a technique's artifact tensors: H x W x 3 uint8 (Artifact::Kind::kFigure),
// or 3 x H x W RGB in [0, 1] (one sample of Artifact::Kind::kPicture).
torch::Tensor FigureTensor(const cv::Mat& bgr);
torch::Tensor PictureTensor(const cv::Mat& bgr);

// Bilinear or nearest resize of an h x w map to H x W.
torch::Tensor ResizeMap(const torch::Tensor& map, int64_t height, int64_t width, bool nearest);

}  // namespace netlens
