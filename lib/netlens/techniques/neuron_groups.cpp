#include "netlens/techniques/neuron_groups.h"

#include <opencv2/imgproc.hpp>

#include "netlens/core/log.h"
#include "netlens/image/figure.h"
#include "netlens/image/render.h"

namespace netlens {

NeuronGroups FactorizeActivation(const torch::Tensor& activation, const torch::Tensor& gradient,
                                 const NmfOptions& options) {
  const torch::Tensor a = activation.detach()[0].to(torch::kCPU, torch::kFloat64);  // C x h x w
  const int64_t c = a.size(0), h = a.size(1), w = a.size(2);
  NeuronGroups groups;
  const double total = a.abs().sum().item<double>();
  groups.negative_share = total > 0 ? (-a).clamp_min(0).sum().item<double>() / total : 0;
  const torch::Tensor flat = a.reshape({c, h * w}).t();  // positions x channels
  // A signed layer (a transformer's LayerNorm, a convolution before its ReLU) is factorized as
  // [a+, a-], 2C non-negative channels, so that its negative half is not lost; a group's direction
  // is then H+ - H- (the split of signed data used for NMF, as in semi-NMF's comparisons).
  groups.split_signs = groups.negative_share > 0.01;
  const torch::Tensor v = groups.split_signs ? torch::cat({flat.clamp_min(0), (-flat).clamp_min(0)}, 1)
                                             : flat.clamp_min(0);
  Log().info("factorizing spatial activations: {} positions x {} channels into {} groups (NMF)",
             h * w, c, options.components);
  if (groups.split_signs)
    Log().info("{:.0f}% of the activation mass is negative: factorizing its positive and negative parts as "
               "{} channels; each group's direction is the difference of its two halves",
               100 * groups.negative_share, 2 * c);
  const NmfResult nmf = Nmf(v, options);
  groups.maps = nmf.w.t().reshape({options.components, h, w}).contiguous();
  groups.loadings = groups.split_signs ? (nmf.h.slice(1, 0, c) - nmf.h.slice(1, c, 2 * c)).contiguous() : nmf.h;
  groups.errors = nmf.errors;
  if (gradient.defined()) {
    const torch::Tensor g = gradient.detach()[0].to(torch::kCPU, torch::kFloat64).reshape({c, h * w});
    const torch::Tensor per_group = (nmf.w.t() * groups.loadings.mm(g)).sum(1);  // k
    for (int64_t i = 0; i < per_group.size(0); ++i) groups.attribution.push_back(per_group[i].item<double>());
  }
  Log().info("NMF: {} iterations, relative reconstruction error {:.4f}", nmf.iterations,
             nmf.errors.empty() ? 1.0 : nmf.errors.back());
  return groups;
}

cv::Scalar GroupColor(int64_t g) { return PaletteColor(g); }

cv::Mat GroupsPicture(const torch::Tensor& maps, const cv::Mat& display) {
  const int64_t k = maps.size(0);
  const int rows = display.rows, cols = display.cols;
  // Each group's map scaled to its own maximum, then upsampled.
  std::vector<torch::Tensor> up;
  for (int64_t g = 0; g < k; ++g) {
    const torch::Tensor m = maps[g];
    up.push_back(ResizeMap(m / std::max(m.max().item<double>(), 1e-12), rows, cols, false).clamp(0, 1));
  }
  const auto [strength, winner] = torch::stack(up).max(0);
  cv::Mat gray;
  cv::cvtColor(display, gray, cv::COLOR_BGR2GRAY);
  cv::Mat out(rows, cols, CV_8UC3);
  const auto s = strength.contiguous();
  const auto win = winner.contiguous();
  const double* sp = s.data_ptr<double>();
  const int64_t* wp = win.data_ptr<int64_t>();
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < cols; ++x) {
      const size_t i = static_cast<size_t>(y) * cols + x;
      const double alpha = 0.8 * sp[i];
      const double base = 0.5 * gray.at<uint8_t>(y, x) + 127.5;  // faded image for context
      const cv::Scalar color = GroupColor(wp[i]);
      cv::Vec3b& px = out.at<cv::Vec3b>(y, x);
      for (int ch = 0; ch < 3; ++ch)
        px[ch] = cv::saturate_cast<uint8_t>((1 - alpha) * base + alpha * color[ch]);
    }
  }
  return out;
}

}  // namespace netlens
