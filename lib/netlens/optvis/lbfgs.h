// L-BFGS as LibTorch's torch::optim::LBFGS runs it with max_iter 1 and no line search, which is
// how netlens optimizes (one evaluation per step, the history carried across steps; the PyTorch
// style tutorial's optimizer): the same iterates, with the two-loop recursion over the stored pairs
// fused. LibTorch runs it as a dot product and an update per pair in each loop, each its own pass
// over the whole parameter vector and its own parallel region; here one pass per pair updates and
// takes the next pair's dot product together (summed in the vector lanes within blocks, the
// blocks' sums in float64), so a step with a full history of 100 reads each stored vector twice
// instead of four times, in half the parallel regions. On small networks that is a fifth of a
// style step (docs/performance.md). Other devices and types take the same recursion in tensor
// operations.
#pragma once

#include <deque>
#include <functional>
#include <vector>

#include "netlens/model/libtorch.h"

namespace netlens::optvis {

class Lbfgs {
 public:
  Lbfgs(std::vector<torch::Tensor> params, double lr, int64_t history = 100);
  // Calls `closure`, which sets the parameters' gradients and returns the loss, and moves the
  // parameters along the L-BFGS direction (not at all where the gradient vanishes, <= 1e-7, or the
  // direction does not descend).
  void Step(const std::function<torch::Tensor()>& closure);

  // -H g for the stored pairs: the two-loop recursion, fused (CPU, float or double) or in tensor
  // operations (`fused` false, or where the fused pass does not apply). Exposed for the tests.
  torch::Tensor Direction(const torch::Tensor& g, bool fused = true) const;

 private:
  torch::Tensor FlatGrad() const;
  torch::Tensor FusedDirection(const torch::Tensor& g) const;
  void Push(const torch::Tensor& y, const torch::Tensor& s, double ys);

  std::vector<torch::Tensor> params_;
  double lr_;
  int64_t history_;
  std::deque<torch::Tensor> y_, s_;  // gradient differences, steps; oldest first
  std::deque<double> ro_;            // 1 / (y . s)
  double h_diag_ = 1;
  torch::Tensor d_, prev_grad_;
  double t_ = 0;
  int64_t iter_ = 0;
};

}  // namespace netlens::optvis
