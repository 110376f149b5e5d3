#include "netlens/optvis/transform.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/vision.h>

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

// Bilinear grid_sample with zeros outside and align_corners=true. LibTorch's CPU kernels split
// their work over the batch only, so a batch of one (one featurevis channel, deepdream, style)
// ran on one thread: 1.7 ms of a 16 ms featurevis step. On the CPU, a batch smaller than
// kRowChunks samples the output rows in kRowChunks slices in parallel; the backward sums the
// slices' input gradients. The slices do not depend on the thread count, so neither do the
// results.
constexpr int64_t kRowChunks = 4;

struct RowSlices {
  int64_t count, rows;
  int64_t Begin(int64_t i) const { return rows * i / count; }
  int64_t Size(int64_t i) const { return Begin(i + 1) - Begin(i); }
};

class RowSplitGridSample : public torch::autograd::Function<RowSplitGridSample> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                               const torch::Tensor& grid) {
    ctx->save_for_backward({input, grid});
    const RowSlices slices{kRowChunks, grid.size(1)};
    std::vector<torch::Tensor> parts(static_cast<size_t>(slices.count));
    at::parallel_for(0, slices.count, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        parts[static_cast<size_t>(i)] = at::grid_sampler_2d(input, grid.narrow(1, slices.Begin(i), slices.Size(i)),
                                                            /*bilinear*/ 0, /*zeros*/ 0, /*align_corners=*/true);
    });
    return torch::cat(parts, 2);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &input = saved[0], &grid = saved[1], &grad = grad_outputs[0];
    const RowSlices slices{kRowChunks, grid.size(1)};
    std::vector<torch::Tensor> parts(static_cast<size_t>(slices.count));
    at::parallel_for(0, slices.count, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        parts[static_cast<size_t>(i)] = std::get<0>(at::grid_sampler_2d_backward(
            grad.narrow(2, slices.Begin(i), slices.Size(i)), input,
            grid.narrow(1, slices.Begin(i), slices.Size(i)), 0, 0, true, {true, false}));
    });
    torch::Tensor sum = parts[0];
    for (size_t i = 1; i < parts.size(); ++i) sum = sum + parts[i];
    return {sum, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor BilinearSample(const torch::Tensor& input, const torch::Tensor& grid) {
  if (input.is_cpu() && input.size(0) < kRowChunks && grid.size(1) >= kRowChunks && !grid.requires_grad())
    return RowSplitGridSample::apply(input, grid);
  return F::grid_sample(input, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(true));
}

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
  return BilinearSample(padded, grid);
}

}  // namespace netlens::optvis
