// The optimization loop shared by every image-optimization technique (featurevis, invert,
// style): Adam or L-BFGS on a parameterized picture, snapshots at thresholds, frames for an
// animation, the objective's curve, a progress bar, and the two ways such a run goes wrong:
//   * the objective does not depend on the picture (a dead channel, a constant layer): the first
//     gradient is zero; the run stops with `constant` set (the caller warns);
//   * a value or a gradient stops being finite: the run stops naming the step and keeps the last
//     finite picture.
#pragma once

#include "netlens/model/libtorch.h"

#include <functional>
#include <string>
#include <vector>

#include "netlens/optvis/param.h"

namespace netlens::optvis {

// L-BFGS keeps this many pairs of past steps and gradient changes by default (LibTorch's, the
// PyTorch tutorial's and Lua neural-style's), each pair two copies of the picture's parameters.
constexpr int64_t kLbfgsHistory = 100;

struct OptimizeOptions {
  int64_t steps = 512;
  double lr = 0.05;
  std::string optimizer = "adam";   // adam | lbfgs (one evaluation per step)
  int64_t history = kLbfgsHistory;  // L-BFGS: pairs of curvature history kept
  std::vector<int64_t> thresholds;  // steps at which a snapshot is kept
  int64_t frames = 0;               // animation frames, spread evenly over the steps (0: none)
  std::string progress = "auto";    // auto (a bar on a terminal) | bar | json | none
  std::string what;                 // for progress and log lines
};

struct OptimizeResult {
  torch::Tensor picture;                  // last finite picture, N x C x H x W in [0, 1], CPU
  std::vector<int64_t> snapshot_steps;
  std::vector<torch::Tensor> snapshots;   // at the thresholds reached
  std::vector<torch::Tensor> frames;      // N x C x h x w each (AnimationFrame: at most kAnimationSide)
  std::vector<double> curve;              // objective (sum over samples) per step
  int64_t steps_done = 0;
  bool constant = false;                  // the objective does not depend on the picture
  std::string stopped;                    // why the run stopped early, "" if it did not
  double seconds = 0;
  // Where the steps' time went, summed over the steps: the picture and the objective (the
  // forward), its gradient (the backward), and the optimizer's update.
  double objective_seconds = 0, gradient_seconds = 0, optimizer_seconds = 0;
};

// `value(picture)` returns what is maximized, one value per sample (the loop ascends their sum).
using ValueFn = std::function<torch::Tensor(const torch::Tensor& picture)>;

OptimizeResult Optimize(ImageParam& param, const ValueFn& value, const OptimizeOptions& options);

}  // namespace netlens::optvis
