#include "netlens/image/render.h"

#include <cmath>

#include <opencv2/imgproc.hpp>
#include <torch/nn/functional/upsampling.h>

namespace netlens {
namespace {

cv::Mat ToMat8(const torch::Tensor& hw01) {
  torch::Tensor t = (hw01.detach().to(torch::kCPU, torch::kFloat32).clamp(0, 1) * 255.0)
                        .round()
                        .to(torch::kUInt8)
                        .contiguous();
  cv::Mat mat(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_8UC1, t.data_ptr());
  return mat.clone();
}

}  // namespace

double CumulativeThreshold(const torch::Tensor& values, double outlier_percent) {
  torch::Tensor sorted = std::get<0>(values.detach().abs().flatten().to(torch::kFloat64).sort());
  torch::Tensor cum = sorted.cumsum(0);
  const double total = cum[-1].item<double>();
  if (total <= 0) return 1.0;
  const double goal = total * (100.0 - outlier_percent) / 100.0;
  const int64_t index = (cum >= goal).to(torch::kLong).argmax().item<int64_t>();
  const double threshold = sorted[index].item<double>();
  return threshold > 0 ? threshold : 1.0;
}

torch::Tensor NormalizeAbs(const torch::Tensor& map, double outlier_percent) {
  return (map.abs() / CumulativeThreshold(map, outlier_percent)).clamp(0, 1);
}

torch::Tensor NormalizeSigned(const torch::Tensor& map, double outlier_percent) {
  return (map / CumulativeThreshold(map, outlier_percent)).clamp(-1, 1);
}

torch::Tensor MinMax(const torch::Tensor& map) {
  const double lo = map.min().item<double>(), hi = map.max().item<double>();
  if (hi - lo <= 0) return torch::zeros_like(map);
  return (map - lo) / (hi - lo);
}

cv::Mat GrayImage(const torch::Tensor& map01) {
  cv::Mat gray = ToMat8(map01), bgr;
  cv::cvtColor(gray, bgr, cv::COLOR_GRAY2BGR);
  return bgr;
}

cv::Mat HeatImage(const torch::Tensor& map01) {
  cv::Mat heat;
  cv::applyColorMap(ToMat8(map01), heat, cv::COLORMAP_JET);
  return heat;
}

cv::Mat DivergingImage(const torch::Tensor& map11) {
  torch::Tensor m = map11.detach().to(torch::kCPU, torch::kFloat32).clamp(-1, 1);
  torch::Tensor pos = m.clamp_min(0), neg = (-m).clamp_min(0);
  // Red for positive, blue for negative, white at zero (BGR planes).
  torch::Tensor b = 1 - pos, g = 1 - pos - neg, r = 1 - neg;
  std::vector<cv::Mat> planes{ToMat8(b), ToMat8(g), ToMat8(r)};
  cv::Mat out;
  cv::merge(planes, out);
  return out;
}

cv::Mat ColorImage(const torch::Tensor& chw01) {
  if (chw01.size(0) != 3) return GrayImage(chw01.mean(0));
  std::vector<cv::Mat> planes{ToMat8(chw01[2]), ToMat8(chw01[1]), ToMat8(chw01[0])};
  cv::Mat out;
  cv::merge(planes, out);
  return out;
}

cv::Mat GridImage(const std::vector<cv::Mat>& tiles, const std::vector<std::string>& captions,
                  int columns) {
  if (tiles.empty()) return cv::Mat();
  const int n = static_cast<int>(tiles.size());
  const int cols = columns > 0 ? std::min(columns, n)
                               : static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int rows = (n + cols - 1) / cols;
  const int w = tiles[0].cols, h = tiles[0].rows, gap = 4;
  bool any_caption = false;
  for (const auto& c : captions) any_caption = any_caption || !c.empty();
  const double font = std::max(0.3, std::min(0.5, w / 400.0));
  const int strip = any_caption ? static_cast<int>(30 * font) + 6 : 0;
  cv::Mat out(rows * (h + strip + gap) + gap, cols * (w + gap) + gap, CV_8UC3, cv::Scalar(255, 255, 255));
  for (int i = 0; i < n; ++i) {
    const int x = gap + (i % cols) * (w + gap), y = gap + (i / cols) * (h + strip + gap);
    tiles[static_cast<size_t>(i)].copyTo(out(cv::Rect(x, y, w, h)));
    if (static_cast<size_t>(i) >= captions.size() || captions[static_cast<size_t>(i)].empty()) continue;
    std::string text = captions[static_cast<size_t>(i)];
    int baseline = 0;
    while (text.size() > 4 && cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font, 1, &baseline).width > w)
      text = text.substr(0, text.size() - 4) + "..";
    cv::putText(out, text, cv::Point(x + 2, y + h + strip - 6), cv::FONT_HERSHEY_SIMPLEX, font,
                cv::Scalar(40, 40, 40), 1, cv::LINE_AA);
  }
  return out;
}

cv::Mat Overlay(const cv::Mat& base_bgr, const cv::Mat& heat_bgr, double alpha) {
  cv::Mat base = base_bgr;
  if (base.size() != heat_bgr.size()) cv::resize(base_bgr, base, heat_bgr.size());
  cv::Mat out;
  cv::addWeighted(heat_bgr, alpha, base, 1.0 - alpha, 0.0, out);
  return out;
}

torch::Tensor ResizeMap(const torch::Tensor& map, int64_t height, int64_t width, bool nearest) {
  namespace F = torch::nn::functional;
  auto options = F::InterpolateFuncOptions().size(std::vector<int64_t>{height, width});
  if (nearest) {
    options.mode(torch::kNearest);
  } else {
    options.mode(torch::kBilinear).align_corners(false);
  }
  return F::interpolate(map.view({1, 1, map.size(-2), map.size(-1)}), options)[0][0];
}

cv::Mat AttributionHeatmap(const torch::Tensor& chw, const cv::Mat& display, double outlier_percent) {
  const torch::Tensor g = chw.detach().to(torch::kCPU, torch::kFloat64);
  return Overlay(display, HeatImage(NormalizeAbs(g.abs().sum(0), outlier_percent)));
}

torch::Tensor CamToDisplay(const torch::Tensor& hw, const cv::Mat& display, bool nearest) {
  const torch::Tensor cam = hw.detach().to(torch::kCPU, torch::kFloat64).clamp_min(0);
  torch::Tensor up = ResizeMap(cam, display.rows, display.cols, nearest);
  up = up - up.min();
  return up / (1e-7 + up.max().item<double>());
}

torch::Tensor FigureTensor(const cv::Mat& bgr) {
  const cv::Mat c = bgr.isContinuous() ? bgr : bgr.clone();
  return torch::from_blob(c.data, {c.rows, c.cols, 3}, torch::kUInt8).clone();
}

torch::Tensor PictureTensor(const cv::Mat& bgr) {
  return FigureTensor(bgr).permute({2, 0, 1}).flip({0}).to(torch::kFloat32).div(255);
}

}  // namespace netlens
