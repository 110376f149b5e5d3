// netlens::rectifier(Tensor x, float lo, float hi, int rule) -> Tensor
//
// Forward: clamp(x, lo, hi) (hi = inf for ReLU, 6 for ReLU6). Backward depends on `rule`:
//   0 (vanilla)   grad_in = grad_out * [lo < x < hi]                 (the ordinary gradient)
//   1 (guided)    grad_in = grad_out * [lo < x < hi] * [grad_out > 0] (Springenberg et al.)
//   2 (deconvnet) grad_in = relu(grad_out)                            (Zeiler & Fergus)
// The lens puts this op in place of every relu, relu_, relu6 and hardtanh(0, max) of a graph
// to change the backward rule of a whole model, whatever form its ReLUs take.
#pragma once

namespace netlens {

enum class BackwardRule { kVanilla = 0, kGuided = 1, kDeconvnet = 2 };

// The qualified op name, for graph rewriting.
constexpr const char* kRectifierOp = "netlens::rectifier";

// Makes sure the translation unit that registers the op is linked in.
void EnsureRectifierOpRegistered();

}  // namespace netlens
