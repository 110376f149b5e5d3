#include "netlens/model/rectifier_op.h"

#include <torch/library.h>
#include <torch/torch.h>

#include <cmath>

namespace netlens {
namespace {

torch::Tensor RectifierForward(const torch::Tensor& x, double lo, double hi) {
  return std::isinf(hi) ? x.clamp_min(lo) : x.clamp(lo, hi);
}

constexpr double kDeepLiftEps = 1e-10;  // Captum's

// A DeepLIFT batch [x; x0] seen as 2 x N x ...: the pairs' halves along the first dimension, so
// that a multiplier of the N pairs broadcasts over both halves without copies.
torch::Tensor Pairs(const torch::Tensor& t) {
  TORCH_CHECK(t.size(0) % 2 == 0, "the deeplift rule needs a batch of input/reference pairs, got ", t.size(0));
  std::vector<int64_t> sizes = t.sizes().vec();
  sizes[0] /= 2;
  sizes.insert(sizes.begin(), 2);
  return t.view(sizes);
}

torch::Tensor DeepLiftRescale(const torch::Tensor& x, const torch::Tensor& g, double lo, double hi) {
  const torch::Tensor xp = Pairs(x);
  const torch::Tensor dx = xp[0] - xp[1];
  const torch::Tensor m = (RectifierForward(xp[0], lo, hi) - RectifierForward(xp[1], lo, hi)) / dx;
  // Where input and reference agree, each half takes its own ordinary gradient.
  torch::Tensor local = (xp > lo);
  if (!std::isinf(hi)) local = local.logical_and(xp < hi);
  const torch::Tensor multiplier = torch::where((dx.abs() < kDeepLiftEps).unsqueeze(0), local.to(g.scalar_type()), m.unsqueeze(0));
  return (Pairs(g) * multiplier).view(g.sizes());
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
    if (IsDeepLift(rule)) {
      grad_in = DeepLiftRescale(x, g, lo, hi);
    } else if (rule == BackwardRule::kDeconvnet) {
      grad_in = g.clamp_min(0);
    } else if (rule == BackwardRule::kLrp) {
      grad_in = g;
    } else {
      // threshold_backward(g, x, lo) is g where x > lo, else 0: ReLU's own fused backward kernel.
      grad_in = at::threshold_backward(rule == BackwardRule::kGuided ? g.clamp_min(0) : g, x, lo);
      if (!std::isinf(hi)) grad_in = grad_in * (x < hi).to(g.scalar_type());
    }
    return {grad_in, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// y = f(x) for a smooth or leaky activation f, computed by the model's own op; the rule decides
// where the incoming gradient goes.
class ActivationRuleFunction : public torch::autograd::Function<ActivationRuleFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& /*x*/,
                               const torch::Tensor& y, int64_t rule) {
    ctx->saved_data["rule"] = rule;
    return y.clone();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto rule = static_cast<BackwardRule>(ctx->saved_data["rule"].toInt());
    const torch::Tensor& g = grad_outputs[0];
    if (rule == BackwardRule::kDeconvnet) return {g.clamp_min(0), torch::Tensor(), torch::Tensor()};
    if (rule == BackwardRule::kLrp) return {g, torch::Tensor(), torch::Tensor()};
    // On to f's own backward: f'(x) * relu(g) under the guided rule, f'(x) * g otherwise.
    return {torch::Tensor(), rule == BackwardRule::kGuided ? g.clamp_min(0) : g, torch::Tensor()};
  }
};

torch::Tensor ActivationRuleAutograd(const torch::Tensor& x, const torch::Tensor& y, int64_t rule) {
  return ActivationRuleFunction::apply(x, y, rule);
}

torch::Tensor ActivationRuleNoGrad(const torch::Tensor& /*x*/, const torch::Tensor& y, int64_t /*rule*/) {
  return y.clone();
}

std::vector<int64_t> StrideOr(const std::vector<int64_t>& stride, const std::vector<int64_t>& kernel) {
  return stride.empty() ? kernel : stride;
}

// max_pool2d whose backward is Captum's DeepLift rule for max-pooling (deep_lift.py, maxpool).
class DeepLiftMaxPoolFunction : public torch::autograd::Function<DeepLiftMaxPoolFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               std::vector<int64_t> kernel, std::vector<int64_t> stride,
                               std::vector<int64_t> padding, std::vector<int64_t> dilation, bool ceil_mode,
                               bool overwrite) {
    // The arg-max positions and the maxima come from the forward pass, for the backward rule.
    const auto [out, indices] =
        at::max_pool2d_with_indices(x, kernel, StrideOr(stride, kernel), padding, dilation, ceil_mode);
    ctx->save_for_backward({x, out, indices});
    ctx->saved_data["overwrite"] = overwrite;
    ctx->saved_data["kernel"] = kernel;
    ctx->saved_data["stride"] = StrideOr(stride, kernel);
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["dilation"] = dilation;
    ctx->saved_data["ceil_mode"] = ceil_mode;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    torch::NoGradGuard no_grad;
    // One layout for the index arithmetic below (a channels-last input would be copied by each
    // flatten, and mixed layouts take the slow elementwise paths).
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor x = saved[0].contiguous(), out = saved[1], indices = saved[2];
    const auto kernel = ctx->saved_data["kernel"].toIntVector();
    const auto stride = ctx->saved_data["stride"].toIntVector();
    const auto padding = ctx->saved_data["padding"].toIntVector();
    const auto dilation = ctx->saved_data["dilation"].toIntVector();
    const bool ceil_mode = ctx->saved_data["ceil_mode"].toBool();
    const torch::Tensor g = grad_outputs[0].contiguous();
    const auto o = out.chunk(2);
    const torch::Tensor xmax = at::max(o[0], o[1]);
    // Input half: max(y, y0) - y0 through the input's arg-max; reference half: y - max(y, y0)
    // through the reference's; their sum, over x - x0, serves both halves.
    const torch::Tensor delta_out = torch::cat({xmax - o[1], o[0] - xmax});
    const torch::Tensor routed_out = g * delta_out;
    torch::Tensor unpooled_all;
    if (ctx->saved_data["overwrite"].toBool()) {
      unpooled_all = at::max_unpool2d(routed_out, indices, {x.size(-2), x.size(-1)});  // Captum's
    } else {
      // What overlapping windows send to a shared arg-max adds up (as the ordinary gradient does).
      unpooled_all = torch::zeros_like(x).flatten(2).scatter_add_(2, indices.flatten(2), routed_out.flatten(2)).view_as(x);
    }
    const auto unpooled = unpooled_all.chunk(2);
    const torch::Tensor routed = unpooled[0] + unpooled[1];
    const torch::Tensor xp = Pairs(x);
    const torch::Tensor dx = xp[0] - xp[1];
    const torch::Tensor ordinary =
        at::max_pool2d_with_indices_backward(g, x, kernel, stride, padding, dilation, ceil_mode, indices);
    const torch::Tensor grad_in =
        torch::where((dx.abs() < kDeepLiftEps).unsqueeze(0), Pairs(ordinary), (routed / dx).unsqueeze(0)).view(x.sizes());
    return {grad_in, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor DeepLiftMaxPoolAutograd(const torch::Tensor& x, c10::IntArrayRef kernel, c10::IntArrayRef stride,
                                      c10::IntArrayRef padding, c10::IntArrayRef dilation, bool ceil_mode,
                                      bool overwrite) {
  return DeepLiftMaxPoolFunction::apply(x, kernel.vec(), stride.vec(), padding.vec(), dilation.vec(), ceil_mode,
                                        overwrite);
}

torch::Tensor DeepLiftMaxPoolNoGrad(const torch::Tensor& x, c10::IntArrayRef kernel, c10::IntArrayRef stride,
                                    c10::IntArrayRef padding, c10::IntArrayRef dilation, bool ceil_mode,
                                    bool /*overwrite*/) {
  return at::max_pool2d(x, kernel, StrideOr(stride.vec(), kernel.vec()), padding, dilation, ceil_mode);
}

torch::Tensor RectifierAutograd(const torch::Tensor& x, double lo, double hi, int64_t rule) {
  return RectifierFunction::apply(x, lo, hi, rule);
}

torch::Tensor RectifierNoGrad(const torch::Tensor& x, double lo, double hi, int64_t /*rule*/) {
  return RectifierForward(x, lo, hi);
}

}  // namespace

TORCH_LIBRARY(netlens, m) {
  m.def("rectifier(Tensor x, float lo, float hi, int rule) -> Tensor");
  m.def("activation_rule(Tensor x, Tensor y, int rule) -> Tensor");
  m.def("deeplift_max_pool2d(Tensor x, int[] kernel_size, int[] stride, int[] padding, int[] dilation, "
        "bool ceil_mode, bool overwrite) -> Tensor");
}

TORCH_LIBRARY_IMPL(netlens, Autograd, m) {
  m.impl("rectifier", &RectifierAutograd);
  m.impl("activation_rule", &ActivationRuleAutograd);
  m.impl("deeplift_max_pool2d", &DeepLiftMaxPoolAutograd);
}

TORCH_LIBRARY_IMPL(netlens, CompositeExplicitAutograd, m) {
  m.impl("rectifier", &RectifierNoGrad);
  m.impl("activation_rule", &ActivationRuleNoGrad);
  m.impl("deeplift_max_pool2d", &DeepLiftMaxPoolNoGrad);
}

void EnsureRectifierOpRegistered() {}

}  // namespace netlens
