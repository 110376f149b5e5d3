#include "netlens/optvis/transform.h"

#include <array>
#include <cmath>

namespace netlens::optvis {
namespace F = torch::nn::functional;

namespace {

using Mat3 = std::array<std::array<double, 3>, 3>;

Mat3 Multiply(const Mat3& a, const Mat3& b) {
  Mat3 c{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) c[i][j] += a[i][k] * b[k][j];
  return c;
}

Mat3 Translate(double tx, double ty) { return {{{1, 0, tx}, {0, 1, ty}, {0, 0, 1}}}; }
Mat3 Scale(double sx, double sy) { return {{{sx, 0, 0}, {0, sy, 0}, {0, 0, 1}}}; }
Mat3 Rotate(double radians) {
  const double c = std::cos(radians), s = std::sin(radians);
  return {{{c, -s, 0}, {s, c, 0}, {0, 0, 1}}};
}

}  // namespace

TransformOptions TransformOptions::Standard() {
  TransformOptions o;
  for (int i = 0; i < 11; ++i) o.scales.push_back(1 + (i - 5) / 50.0);
  for (int a = -10; a <= 10; ++a) o.angles.push_back(a);
  for (int i = 0; i < 5; ++i) o.angles.push_back(0);
  return o;
}

TransformOptions TransformOptions::None() {
  TransformOptions o;
  o.pad = 0;
  o.jitter = 0;
  o.jitter2 = 0;
  return o;
}

torch::Tensor Transform::operator()(const torch::Tensor& pictures) {
  const int64_t n = pictures.size(0);
  const int64_t p = options_.pad;
  torch::Tensor padded = p > 0 ? F::pad(pictures, F::PadFuncOptions({p, p, p, p}).value(0.5)) : pictures;
  const int64_t h0 = padded.size(2), w0 = padded.size(3);
  const int64_t ho = options_.out_height > 0 ? options_.out_height : h0;
  const int64_t wo = options_.out_width > 0 ? options_.out_width : w0;
  auto pick_shift = [&](int64_t d) { return d > 1 ? static_cast<double>(rng_() % static_cast<uint64_t>(d)) : 0.0; };

  std::vector<double> thetas;
  thetas.reserve(static_cast<size_t>(n) * 6);
  for (int64_t b = 0; b < n; ++b) {
    const double dx1 = pick_shift(options_.jitter), dy1 = pick_shift(options_.jitter);
    const double s = options_.scales.empty() ? 1.0 : options_.scales[rng_() % options_.scales.size()];
    const double deg = options_.angles.empty() ? 0.0 : options_.angles[rng_() % options_.angles.size()];
    const double dx2 = pick_shift(options_.jitter2), dy2 = pick_shift(options_.jitter2);
    // Sizes along the chain, as Lucent's ops make them (align_corners=True resampling).
    const double h1 = std::ceil(s * h0), w1 = std::ceil(s * w0);
    const double pad_y = std::max(0.0, std::ceil((h0 - h1) / 2)), pad_x = std::max(0.0, std::ceil((w0 - w1) / 2));
    const double h2 = h1 + 2 * pad_y, w2 = w1 + 2 * pad_x;
    // Output pixel -> input pixel, composed backwards through the chain.
    Mat3 m = Scale(wo > 1 ? (w2 - 1) / (wo - 1) : 1, ho > 1 ? (h2 - 1) / (ho - 1) : 1);  // upsample
    m = Multiply(Translate(-dx2, -dy2), m);                                                   // jitter 2
    const double cx = (w2 - 1) / 2, cy = (h2 - 1) / 2;
    m = Multiply(Multiply(Translate(cx, cy), Multiply(Rotate(-deg * M_PI / 180), Translate(-cx, -cy))), m);
    m = Multiply(Translate(-pad_x, -pad_y), m);                                               // scale pad
    m = Multiply(Scale(w1 > 1 ? (w0 - 1) / (w1 - 1) : 1, h1 > 1 ? (h0 - 1) / (h1 - 1) : 1), m);  // scale
    m = Multiply(Translate(-dx1, -dy1), m);                                                   // jitter 1
    // In normalized coordinates (align_corners=True): x_pix = (u + 1) / 2 * (size - 1).
    const Mat3 out_to_pix{{{(wo - 1) / 2.0, 0, (wo - 1) / 2.0}, {0, (ho - 1) / 2.0, (ho - 1) / 2.0}, {0, 0, 1}}};
    const Mat3 pix_to_in{{{2.0 / (w0 - 1), 0, -1}, {0, 2.0 / (h0 - 1), -1}, {0, 0, 1}}};
    const Mat3 theta = Multiply(pix_to_in, Multiply(m, out_to_pix));
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) thetas.push_back(theta[i][j]);
  }
  const torch::Tensor theta = torch::tensor(thetas, torch::kFloat64).view({n, 2, 3}).to(pictures.device(), pictures.scalar_type());
  const torch::Tensor grid = F::affine_grid(theta, {n, pictures.size(1), ho, wo}, /*align_corners=*/true);
  return F::grid_sample(padded, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(true));
}

}  // namespace netlens::optvis
