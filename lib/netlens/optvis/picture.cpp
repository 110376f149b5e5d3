#include "netlens/optvis/picture.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>
#include <torch/nn/functional/upsampling.h>

namespace netlens::optvis {

torch::Tensor ToModelInput(const torch::Tensor& pictures, const ModelMetadata& meta) {
  torch::Tensor x = pictures;
  const int64_t c = x.size(1);
  if (meta.channel_order == "bgr" && c == 3) x = x.flip({1});
  const auto o = torch::TensorOptions().dtype(x.scalar_type()).device(x.device());
  std::vector<double> mean = meta.mean, stdv = meta.std;
  mean.resize(static_cast<size_t>(c), mean.empty() ? 0.0 : mean.back());
  stdv.resize(static_cast<size_t>(c), stdv.empty() ? 1.0 : stdv.back());
  x = (x - torch::tensor(mean, o).view({1, c, 1, 1})) / torch::tensor(stdv, o).view({1, c, 1, 1});
  // float32 on the CPU: channels-last input takes oneDNN's faster convolutions.
  if (x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && c == 3)
    x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  return x;
}

torch::Tensor PictureFromBgr(const cv::Mat& bgr, const ModelMetadata& meta, torch::Device device,
                             torch::ScalarType dtype) {
  cv::Mat converted;
  cv::cvtColor(bgr, converted, meta.channels == 1 ? cv::COLOR_BGR2GRAY : cv::COLOR_BGR2RGB);
  converted = converted.isContinuous() ? converted : converted.clone();
  return torch::from_blob(converted.data, {converted.rows, converted.cols, converted.channels()},
                          torch::kUInt8)
      .permute({2, 0, 1})
      .to(torch::kFloat64)
      .div(255.0)
      .unsqueeze(0)
      .contiguous()
      .to(device, dtype);
}

torch::Tensor Resized(const torch::Tensor& pictures, int64_t height, int64_t width) {
  namespace F = torch::nn::functional;
  if (pictures.size(2) == height && pictures.size(3) == width) return pictures;
  return F::interpolate(pictures, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{height, width})
                                      .mode(torch::kBilinear)
                                      .align_corners(false));
}

torch::Tensor AnimationFrame(const torch::Tensor& pictures) {
  namespace F = torch::nn::functional;
  const int64_t h = pictures.size(2), w = pictures.size(3), longer = std::max(h, w);
  torch::Tensor frame = pictures.detach();
  if (longer > kAnimationSide) {
    const double f = static_cast<double>(kAnimationSide) / static_cast<double>(longer);
    frame = F::interpolate(frame, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{std::max<int64_t>(1, std::lround(h * f)),
                                                                 std::max<int64_t>(1, std::lround(w * f))})
                                      .mode(torch::kArea));
  }
  return frame.to(torch::kCPU);
}

torch::Tensor TotalVariation(const torch::Tensor& p) {
  using torch::indexing::None;
  using torch::indexing::Slice;
  const auto dy = p.index({Slice(), Slice(), Slice(1, None)}) - p.index({Slice(), Slice(), Slice(None, -1)});
  const auto dx = p.index({Slice(), Slice(), Slice(), Slice(1, None)}) -
                  p.index({Slice(), Slice(), Slice(), Slice(None, -1)});
  return dy.abs().flatten(1).mean(1) + dx.abs().flatten(1).mean(1);
}

}  // namespace netlens::optvis
