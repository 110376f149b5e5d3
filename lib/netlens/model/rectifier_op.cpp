#include "netlens/model/rectifier_op.h"

#include <torch/library.h>
#include <torch/torch.h>

#include <cmath>

namespace netlens {
namespace {

torch::Tensor RectifierForward(const torch::Tensor& x, double lo, double hi) {
  return std::isinf(hi) ? x.clamp_min(lo) : x.clamp(lo, hi);
}

class RectifierFunction : public torch::autograd::Function<RectifierFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               double lo, double hi, int64_t rule) {
    ctx->save_for_backward({x});
    ctx->saved_data["lo"] = lo;
    ctx->saved_data["hi"] = hi;
    ctx->saved_data["rule"] = rule;
    return RectifierForward(x, lo, hi);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const torch::Tensor x = ctx->get_saved_variables()[0];
    const double lo = ctx->saved_data["lo"].toDouble();
    const double hi = ctx->saved_data["hi"].toDouble();
    const auto rule = static_cast<BackwardRule>(ctx->saved_data["rule"].toInt());
    const torch::Tensor& g = grad_outputs[0];
    torch::Tensor grad_in;
    if (rule == BackwardRule::kDeconvnet) {
      grad_in = g.clamp_min(0);
    } else {
      // threshold_backward(g, x, lo) is g where x > lo, else 0: ReLU's own fused backward kernel.
      grad_in = at::threshold_backward(rule == BackwardRule::kGuided ? g.clamp_min(0) : g, x, lo);
      if (!std::isinf(hi)) grad_in = grad_in * (x < hi).to(g.scalar_type());
    }
    return {grad_in, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor RectifierAutograd(const torch::Tensor& x, double lo, double hi, int64_t rule) {
  return RectifierFunction::apply(x, lo, hi, rule);
}

torch::Tensor RectifierNoGrad(const torch::Tensor& x, double lo, double hi, int64_t /*rule*/) {
  return RectifierForward(x, lo, hi);
}

}  // namespace

TORCH_LIBRARY(netlens, m) {
  m.def("rectifier(Tensor x, float lo, float hi, int rule) -> Tensor");
}

TORCH_LIBRARY_IMPL(netlens, Autograd, m) { m.impl("rectifier", &RectifierAutograd); }

TORCH_LIBRARY_IMPL(netlens, CompositeExplicitAutograd, m) {
  m.impl("rectifier", &RectifierNoGrad);
}

void EnsureRectifierOpRegistered() {}

}  // namespace netlens
