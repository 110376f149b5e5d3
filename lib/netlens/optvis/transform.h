// Transformation robustness (Lucid's standard_transforms, as in Lucent): before every step the
// picture is padded by 12 pixels of grey (0.5), shifted by 0..7 pixels, scaled by one of
// 0.90, 0.92 .. 1.10, rotated by one of -10..10 degrees (0 five times as likely), shifted by 0..3
// pixels, and resampled to the size the model sees (Lucent upsamples pictures smaller than 224
// to 224; netlens to the model's input size). Lucent applies these one after another, each with
// its own interpolation; netlens composes them into one affine map per sample and resamples
// once (bilinear, zeros outside the padded picture, as Lucent's translate and rotate fill), in
// one batched grid_sample. Each sample draws its own transform from a seeded generator.
#pragma once

#include "netlens/model/libtorch.h"

#include <random>
#include <vector>

namespace netlens::optvis {

struct TransformOptions {
  int64_t pad = 12;
  int64_t jitter = 8;                 // first shift: 0 .. jitter-1 pixels
  std::vector<double> scales;         // empty: no scaling
  std::vector<double> angles;         // degrees; empty: no rotation
  int64_t jitter2 = 4;                // second shift
  int64_t out_height = 0, out_width = 0;  // 0: the padded picture's size

  // Lucid's standard_transforms.
  static TransformOptions Standard();
  // Only the resampling to the output size (no robustness).
  static TransformOptions None();
};

// grid_sample(input, grid), bilinear, zeros outside, align_corners=true; on the CPU, small
// batches sample row slices in parallel (LibTorch's kernels parallelize over the batch only).
torch::Tensor BilinearSample(const torch::Tensor& input, const torch::Tensor& grid);

class Transform {
 public:
  Transform(TransformOptions options, uint64_t seed) : options_(std::move(options)), rng_(seed) {}
  // N x C x H x W pictures in [0, 1] -> N x C x out_height x out_width, differentiable.
  torch::Tensor operator()(const torch::Tensor& pictures);

 private:
  TransformOptions options_;
  std::mt19937_64 rng_;
};

}  // namespace netlens::optvis
