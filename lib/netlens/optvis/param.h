// Parameterizations of the optimized picture (Lucid's, as ported by Lucent):
//   pixel: the picture's values themselves;
//   fft:   a spectrum (real and imaginary part per frequency) scaled by 1 / max(f, 1/max(H, W)),
//          the 1/f decay of natural images, then an orthonormal inverse real FFT, divided by 4;
//   decorrelate: the three channels are mixed by the square root of ImageNet's colour
//          correlation (normalized by its largest column norm), so that steps move luminance and
//          colour separately;
//   valid: sigmoid (Lucid) or 0.5 + x clamped to [0, 1].
// Both spaces start from N(0, sd^2) noise (sd 0.01), seeded. Render() returns N x C x H x W RGB
// (or gray) values in [0, 1]; the model's own channel order and normalization come after.
#pragma once

#include "netlens/model/libtorch.h"

#include <string>
#include <vector>

namespace netlens::optvis {

struct ParamOptions {
  std::string space = "fft";      // fft | pixel
  bool decorrelate = true;        // 3 channels only
  std::string valid = "sigmoid";  // sigmoid | clamp
  int64_t batch = 1, channels = 3, height = 128, width = 128;
  double sd = 0.01;
  double decay = 1.0;             // fft: spectrum scale 1/f^decay
  uint64_t seed = 0;
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
};

class ImageParam {
 public:
  explicit ImageParam(const ParamOptions& options);
  // Starts from `picture` (N x C x H x W in [0, 1]) instead of noise: the pixel space holds the
  // inverse of the valid mapping (and of the colour decorrelation), so Render() gives it back.
  ImageParam(const ParamOptions& options, const torch::Tensor& picture);

  std::vector<torch::Tensor> tensors() const { return {raw_}; }  // what the optimizer updates
  torch::Tensor Render() const;
  const ParamOptions& options() const { return options_; }

 private:
  torch::Tensor Decorrelated(const torch::Tensor& t) const;

  ParamOptions options_;
  torch::Tensor raw_;    // pixel values or the spectrum (N x C x H x W/2+1 x 2)
  torch::Tensor scale_;  // fft: 1/f scale per frequency
  torch::Tensor color_;  // 3 x 3 mixing matrix (transposed for right-multiplication)
};

}  // namespace netlens::optvis
