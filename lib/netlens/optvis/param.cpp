#include "netlens/optvis/param.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <torch/fft.h>

#include "netlens/core/errors.h"

namespace netlens::optvis {

namespace {

// Lucid's square root of ImageNet's colour correlation matrix.
constexpr double kColorSqrt[3][3] = {{0.26, 0.09, 0.02}, {0.27, 0.00, -0.05}, {0.27, -0.09, 0.03}};

// numpy.fft.fftfreq(n)[i]
double FftFreq(int64_t i, int64_t n) {
  const int64_t half = (n - 1) / 2 + 1;
  return static_cast<double>(i < half ? i : i - n) / static_cast<double>(n);
}

// Lucid's rfft2d_freqs: |f| per (row, column) of a real FFT of H x W; odd W keeps one more column.
torch::Tensor Rfft2dFreqs(int64_t h, int64_t w) {
  const int64_t cols = w % 2 == 1 ? w / 2 + 2 : w / 2 + 1;
  torch::Tensor f = torch::empty({h, cols}, torch::kFloat64);
  auto a = f.accessor<double, 2>();
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < cols; ++x) {
      const double fy = FftFreq(y, h), fx = FftFreq(x, w);
      a[y][x] = std::sqrt(fx * fx + fy * fy);
    }
  return f;
}

}  // namespace

ImageParam::ImageParam(const ParamOptions& options) : options_(options) {
  if (options_.space != "fft" && options_.space != "pixel")
    throw UsageError("unknown parameterization " + options_.space + "; use fft or pixel");
  if (options_.channels != 3) options_.decorrelate = false;
  torch::Tensor m = torch::empty({3, 3}, torch::kFloat64);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) m[i][j] = kColorSqrt[i][j];
  const double max_norm = m.norm(2, {0}).max().item<double>();
  color_ = (m / max_norm).t().contiguous().to(options_.device, options_.dtype);

  auto generator = at::detail::createCPUGenerator(options_.seed);
  const auto o = torch::TensorOptions().dtype(options_.dtype).device(options_.device);
  const int64_t n = options_.batch, c = options_.channels, h = options_.height, w = options_.width;
  if (options_.space == "pixel") {
    raw_ = torch::randn({n, c, h, w}, generator, torch::kFloat64) * options_.sd;
  } else {
    const torch::Tensor freqs = Rfft2dFreqs(h, w);
    raw_ = torch::randn({n, c, freqs.size(0), freqs.size(1), 2}, generator, torch::kFloat64) * options_.sd;
    const double floor = 1.0 / static_cast<double>(std::max(h, w));
    // Lucid's 1/f scale with its final division by 4 folded in, spelled out over the whole
    // spectrum: a broadcast over the (re, im) pairs took twice the time of a plain product.
    scale_ = (1.0 / freqs.clamp_min(floor).pow(options_.decay) / 4.0)
                 .view({1, 1, freqs.size(0), freqs.size(1), 1})
                 .expand({n, c, freqs.size(0), freqs.size(1), 2})
                 .contiguous()
                 .to(o);
  }
  raw_ = raw_.to(o).requires_grad_(true);
}

ImageParam::ImageParam(const ParamOptions& options, const torch::Tensor& picture) : ImageParam([&] {
      ParamOptions o = options;
      o.space = "pixel";
      o.batch = picture.size(0);
      o.channels = picture.size(1);
      o.height = picture.size(2);
      o.width = picture.size(3);
      return o;
    }()) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = picture.to(options_.device, options_.dtype).clamp(1e-4, 1 - 1e-4);
  x = options_.valid == "sigmoid" ? torch::log(x / (1 - x)) : x - 0.5;
  if (options_.decorrelate) {
    const torch::Tensor inverse = torch::inverse(color_.to(torch::kFloat64)).to(options_.dtype);
    x = torch::matmul(x.permute({0, 2, 3, 1}), inverse).permute({0, 3, 1, 2});
  }
  raw_.copy_(x);
}

torch::Tensor ImageParam::Decorrelated(const torch::Tensor& t) const {
  return torch::matmul(t.permute({0, 2, 3, 1}), color_).permute({0, 3, 1, 2});
}

torch::Tensor ImageParam::Render() const {
  torch::Tensor image;
  if (options_.space == "pixel") {
    image = raw_;
  } else {
    const torch::Tensor spectrum = torch::view_as_complex(scale_ * raw_);
    image = torch::fft::irfftn(spectrum, std::vector<int64_t>{options_.height, options_.width},
                               std::vector<int64_t>{2, 3}, "ortho");
  }
  if (options_.decorrelate) image = Decorrelated(image);
  return options_.valid == "sigmoid" ? torch::sigmoid(image) : (image + 0.5).clamp(0, 1);
}

}  // namespace netlens::optvis
