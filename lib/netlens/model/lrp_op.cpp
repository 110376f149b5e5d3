// The ops that carry LRP's rules in a rewritten graph (see lrp.h for the rules).
#include <torch/library.h>
#include "netlens/model/libtorch.h"

#include <mutex>

#include "netlens/model/lrp.h"

namespace netlens {
namespace {

using torch::Tensor;

// g / (z + eps * sign(z)), sign(0) = 1 (Captum's and Zennit's stabilizer); 0 where that is 0
// (eps = 0 and z = 0: no input contributes, so there is nothing to pass relevance to).
Tensor Ratio(const Tensor& g, const Tensor& z, double eps) {
  const Tensor den = torch::where(z >= 0, z + eps, z - eps);
  return eps > 0 ? g / den : torch::where(den == 0, torch::zeros_like(g), g / den);
}

// The relevance that layers absorb (biases, stabilizers) during a tallied backward pass.
struct Tally {
  std::mutex mutex;
  bool active = false;
  double absorbed = 0;
  void Add(const Tensor& t, double sign) {
    std::lock_guard<std::mutex> lock(mutex);
    if (active) absorbed += sign * t.sum().to(torch::kFloat64).item<double>();
  }
};
Tally& TheTally() {
  static Tally tally;
  return tally;
}

// A convolution or a linear map with its geometry: the forward with any weights and bias, and the
// transposed map (the gradient with respect to the input) of a given weight.
struct Affine {
  bool conv = true;
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups = 1;

  Tensor Forward(const Tensor& in, const Tensor& weight, const Tensor& bias) const {
    if (!conv) return at::linear(in, weight, bias);
    const std::vector<int64_t> output_padding(stride.size(), 0);
    return at::convolution(in, weight, bias, stride, padding, dilation, false, output_padding, groups);
  }
  Tensor Transposed(const Tensor& like, const Tensor& weight, const Tensor& s) const {
    if (!conv) return s.matmul(weight);
    const std::vector<int64_t> output_padding(stride.size(), 0);
    return std::get<0>(at::convolution_backward(s, like, weight, c10::nullopt, stride, padding, dilation, false,
                                                output_padding, groups, {true, false, false}));
  }
};

// A sign-split pass of the gamma and alpha-beta rules: the positive inputs x+ through w1 (with
// bias b1), the negative ones x- through w2, relevance g over their own sum. `mixed`: x has a
// negative part (after a ReLU it has none, and the x- passes drop out).
Tensor SignSplit(const Affine& a, const Tensor& x, bool mixed, const Tensor& w1, const Tensor& w2, const Tensor& b1,
                 const Tensor& g, double eps) {
  const Tensor xp = mixed ? x.clamp_min(0) : x, xn = mixed ? x.clamp_max(0) : Tensor();
  Tensor z = a.Forward(xp, w1, b1);
  if (mixed) z = z + a.Forward(xn, w2, Tensor());
  const Tensor s = Ratio(g, z, eps);
  Tensor r = xp * a.Transposed(x, w1, s);
  if (mixed) r = r + xn * a.Transposed(x, w2, s);
  return r;
}

// The relevance at the layer's input for relevance g at its output (x: input, y: output as the
// model computed it, w and b the weights with any batch norm already folded in; b is a zero
// tensor for a layer without bias).
Tensor AffineRule(const Affine& a, const Tensor& x, const Tensor& y, const Tensor& w, const Tensor& b_in,
                  const Tensor& low, const Tensor& high, LrpRule rule, const std::vector<double>& p, const Tensor& g) {
  const double eps = p[0], gamma = p[1], alpha = p[2], beta = p[3];
  const bool zero_bias = p[4] != 0;
  const Tensor b = zero_bias ? torch::zeros_like(b_in) : b_in;
  switch (rule) {
    case LrpRule::kEpsilon: {
      // y is the layer's output as the model computed it: W x + b, batch norm included.
      const Tensor z = zero_bias ? a.Forward(x, w, b) : y;
      return x * a.Transposed(x, w, Ratio(g, z, eps));
    }
    case LrpRule::kGamma: {
      // Zennit's generalized gamma: a positive output takes W + gamma W+ on positive inputs and
      // W + gamma W- on negative ones (its denominator is at least z), a negative output the
      // mirror; for a ReLU network's positive inputs and outputs, the rule of Montavon et al.
      const Tensor wp = w + gamma * w.clamp_min(0), wn = w + gamma * w.clamp_max(0);
      const Tensor bp = b + gamma * b.clamp_min(0), bn = b + gamma * b.clamp_max(0);
      const bool mixed = (x < 0).any().item<bool>();
      return SignSplit(a, x, mixed, wp, wn, bp, g * (y > 0).to(g.scalar_type()), eps) +
             SignSplit(a, x, mixed, wn, wp, bn, g * (y < 0).to(g.scalar_type()), eps);
    }
    case LrpRule::kAlphaBeta:
    case LrpRule::kZPlus: {
      const Tensor wp = w.clamp_min(0), wn = w.clamp_max(0);
      const bool mixed = (x < 0).any().item<bool>();
      const Tensor positive = SignSplit(a, x, mixed, wp, wn, b.clamp_min(0), g, eps);
      if (rule == LrpRule::kZPlus) return positive;
      if (beta == 0) return alpha * positive;
      return alpha * positive - beta * SignSplit(a, x, mixed, wn, wp, b.clamp_max(0), g, eps);
    }
    case LrpRule::kFlat: {
      const Tensor ones = torch::ones_like(x), w1 = torch::ones_like(w);
      return a.Transposed(x, w1, Ratio(g, a.Forward(ones, w1, Tensor()), eps));
    }
    case LrpRule::kWSquare: {
      const Tensor w2 = w * w;
      const Tensor z = a.Forward(torch::ones_like(x), w2, b * b);
      return a.Transposed(x, w2, Ratio(g, z, eps));
    }
    case LrpRule::kZBox: {
      TORCH_CHECK(low.sizes() == x.sizes() && high.sizes() == x.sizes(), "the zbox rule needs the bounds of its input");
      const Tensor wp = w.clamp_min(0), wn = w.clamp_max(0);
      const Tensor z = a.Forward(x, w, b) - a.Forward(low, wp, b.clamp_min(0)) - a.Forward(high, wn, b.clamp_max(0));
      const Tensor s = Ratio(g, z, eps);
      return x * a.Transposed(x, w, s) - low * a.Transposed(x, wp, s) - high * a.Transposed(x, wn, s);
    }
  }
  TORCH_CHECK(false, "unknown LRP rule ", static_cast<int>(rule));
}

// The layer's weights with any batch norm after it folded in: W' = W s, b' = (b - mean) s + beta
// with s = gamma / sqrt(var + eps). A missing bias is a zero one (the same in every rule).
std::pair<Tensor, Tensor> Folded(const Tensor& w, const Tensor& b, const Tensor& bn_w, const Tensor& bn_b,
                                 const Tensor& bn_mean, const Tensor& bn_var, double bn_eps) {
  torch::NoGradGuard no_grad;
  Tensor bias = b.defined() ? b.detach() : torch::zeros({w.size(0)}, w.options());
  if (!bn_var.defined()) return {w.detach(), bias};
  const Tensor scale = (bn_w.defined() ? bn_w : torch::ones_like(bn_var)) / (bn_var + bn_eps).sqrt();
  std::vector<int64_t> shape(w.dim(), 1);
  shape[0] = -1;
  bias = (bias - bn_mean) * scale;
  if (bn_b.defined()) bias = bias + bn_b;
  return {w.detach() * scale.view(shape), bias};
}

// Every tensor argument is defined: LibTorch 1.13's Function::apply reads each one's device.
class LrpAffineFunction : public torch::autograd::Function<LrpAffineFunction> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& y, const Tensor& w,
                        const Tensor& b, const Tensor& low, const Tensor& high, std::vector<int64_t> stride,
                        std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups, int64_t rule,
                        std::vector<double> params) {
    ctx->save_for_backward({x, y, w, b, low, high});
    ctx->saved_data["conv"] = w.dim() > 2;
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["dilation"] = dilation;
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["rule"] = rule;
    ctx->saved_data["params"] = params;
    return y.clone();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    torch::NoGradGuard no_grad;
    const auto saved = ctx->get_saved_variables();
    Affine a;
    a.conv = ctx->saved_data["conv"].toBool();
    a.stride = ctx->saved_data["stride"].toIntVector();
    a.padding = ctx->saved_data["padding"].toIntVector();
    a.dilation = ctx->saved_data["dilation"].toIntVector();
    a.groups = ctx->saved_data["groups"].toInt();
    const auto rule = static_cast<LrpRule>(ctx->saved_data["rule"].toInt());
    const std::vector<double> params = ctx->saved_data["params"].toDoubleVector();
    const Tensor r = AffineRule(a, saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], rule, params,
                                grad_outputs[0]);
    TheTally().Add(grad_outputs[0], 1.0);
    TheTally().Add(r, -1.0);
    torch::autograd::variable_list grads(12);
    grads[0] = r;
    return grads;
  }
};

Tensor OrUndefined(const c10::optional<Tensor>& t) { return t.has_value() ? *t : Tensor(); }

Tensor LrpAffineAutograd(const Tensor& x, const Tensor& y, const Tensor& w, const c10::optional<Tensor>& b,
                         c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation, int64_t groups,
                         const c10::optional<Tensor>& bn_w, const c10::optional<Tensor>& bn_b,
                         const c10::optional<Tensor>& bn_mean, const c10::optional<Tensor>& bn_var, double bn_eps,
                         const c10::optional<Tensor>& low, const c10::optional<Tensor>& high, int64_t rule,
                         c10::ArrayRef<double> params) {
  const auto [wf, bf] = Folded(w, OrUndefined(b), OrUndefined(bn_w), OrUndefined(bn_b), OrUndefined(bn_mean),
                               OrUndefined(bn_var), bn_eps);
  const Tensor none = torch::empty({0}, x.options());
  const Tensor l = low.has_value() && low->defined() ? low->detach() : none;
  const Tensor h = high.has_value() && high->defined() ? high->detach() : none;
  return LrpAffineFunction::apply(x, y, wf, bf, l, h, stride.vec(), padding.vec(), dilation.vec(), groups, rule,
                                  params.vec());
}

Tensor LrpAffineNoGrad(const Tensor& /*x*/, const Tensor& y, const Tensor& /*w*/, const c10::optional<Tensor>& /*b*/,
                       c10::IntArrayRef /*stride*/, c10::IntArrayRef /*padding*/, c10::IntArrayRef /*dilation*/,
                       int64_t /*groups*/, const c10::optional<Tensor>& /*bn_w*/, const c10::optional<Tensor>& /*bn_b*/,
                       const c10::optional<Tensor>& /*bn_mean*/, const c10::optional<Tensor>& /*bn_var*/,
                       double /*bn_eps*/, const c10::optional<Tensor>& /*low*/, const c10::optional<Tensor>& /*high*/,
                       int64_t /*rule*/, c10::ArrayRef<double> /*params*/) {
  return y.clone();
}

// Before an op without parameters (a sum, a pooling): relevance = x * gradient.
class LrpNormInFunction : public torch::autograd::Function<LrpNormInFunction> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x.clone();
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    Tensor r = grad_outputs[0] * ctx->get_saved_variables()[0];
    TheTally().Add(r, -1.0);
    return {r};
  }
};

// After it: gradient = relevance / stab(z).
class LrpNormOutFunction : public torch::autograd::Function<LrpNormOutFunction> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& z, double eps) {
    ctx->save_for_backward({z});
    ctx->saved_data["eps"] = eps;
    return z.clone();
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const Tensor z = ctx->get_saved_variables()[0];
    TheTally().Add(grad_outputs[0], 1.0);
    return {Ratio(grad_outputs[0], z, ctx->saved_data["eps"].toDouble()), Tensor()};
  }
};

Tensor LrpNormInAutograd(const Tensor& x) { return LrpNormInFunction::apply(x); }
Tensor LrpNormOutAutograd(const Tensor& z, double eps) { return LrpNormOutFunction::apply(z, eps); }
Tensor LrpNormInNoGrad(const Tensor& x) { return x.clone(); }
Tensor LrpNormOutNoGrad(const Tensor& z, double /*eps*/) { return z.clone(); }

// LayerNorm under the conservative LN rule (Ali et al. 2022, "XAI for Transformers: Better
// Explanations through Conservative Propagation"): the normalizing standard deviation s is held
// constant, so y = (x - mean x) / s * w + b is affine in x, and the epsilon rule of that map gives
// R_x = x * ((q - mean q) / s), q = R * w / stab(y), the mean over the normalized dimensions
// (stab(y - b) with --bias zero, so that the bias absorbs nothing).
class LrpLayerNormFunction : public torch::autograd::Function<LrpLayerNormFunction> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, std::vector<int64_t> shape,
                        const Tensor& w, const Tensor& b, double eps, double stab, bool zero_bias) {
    const Tensor y = at::layer_norm(x, shape, w.defined() ? c10::optional<Tensor>(w) : c10::nullopt,
                                    b.defined() ? c10::optional<Tensor>(b) : c10::nullopt, eps);
    std::vector<int64_t> dims;
    for (size_t i = 0; i < shape.size(); ++i) dims.push_back(x.dim() - 1 - static_cast<int64_t>(i));
    const Tensor sd = (x.var(dims, /*unbiased=*/false, /*keepdim=*/true) + eps).sqrt();
    ctx->save_for_backward({x, zero_bias && b.defined() ? y - b : y, w, sd});
    ctx->saved_data["dims"] = dims;
    ctx->saved_data["stab"] = stab;
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    torch::NoGradGuard no_grad;
    const auto saved = ctx->get_saved_variables();
    const std::vector<int64_t> dims = ctx->saved_data["dims"].toIntVector();
    Tensor q = Ratio(grad_outputs[0], saved[1], ctx->saved_data["stab"].toDouble());
    if (saved[2].defined()) q = q * saved[2];
    const Tensor r = saved[0] * ((q - q.mean(dims, /*keepdim=*/true)) / saved[3]);
    TheTally().Add(grad_outputs[0], 1.0);
    TheTally().Add(r, -1.0);
    return {r, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

Tensor LrpLayerNormAutograd(const Tensor& x, c10::IntArrayRef shape, const c10::optional<Tensor>& w,
                            const c10::optional<Tensor>& b, double eps, double stab, bool zero_bias) {
  return LrpLayerNormFunction::apply(x, shape.vec(), OrUndefined(w), OrUndefined(b), eps, stab, zero_bias);
}
Tensor LrpLayerNormNoGrad(const Tensor& x, c10::IntArrayRef shape, const c10::optional<Tensor>& w,
                          const c10::optional<Tensor>& b, double eps, double /*stab*/, bool /*zero_bias*/) {
  return at::layer_norm(x, shape, w, b, eps);
}

}  // namespace

Tensor LrpNormIn(const Tensor& x) { return LrpNormInFunction::apply(x); }
Tensor LrpNormOut(const Tensor& z, double eps) { return LrpNormOutFunction::apply(z, eps); }

TORCH_LIBRARY_FRAGMENT(netlens, m) {
  m.def("lrp_affine(Tensor x, Tensor y, Tensor weight, Tensor? bias, int[] stride, int[] padding, int[] dilation, "
        "int groups, Tensor? bn_weight, Tensor? bn_bias, Tensor? bn_mean, Tensor? bn_var, float bn_eps, Tensor? low, "
        "Tensor? high, int rule, float[] params) -> Tensor");
  m.def("lrp_norm_in(Tensor x) -> Tensor");
  m.def("lrp_norm_out(Tensor z, float eps) -> Tensor");
  m.def("lrp_layer_norm(Tensor x, int[] normalized_shape, Tensor? weight, Tensor? bias, float eps, float stab, bool zero_bias) -> Tensor");
}

TORCH_LIBRARY_IMPL(netlens, Autograd, m) {
  m.impl("lrp_affine", &LrpAffineAutograd);
  m.impl("lrp_norm_in", &LrpNormInAutograd);
  m.impl("lrp_norm_out", &LrpNormOutAutograd);
  m.impl("lrp_layer_norm", &LrpLayerNormAutograd);
}

TORCH_LIBRARY_IMPL(netlens, CompositeExplicitAutograd, m) {
  m.impl("lrp_affine", &LrpAffineNoGrad);
  m.impl("lrp_norm_in", &LrpNormInNoGrad);
  m.impl("lrp_norm_out", &LrpNormOutNoGrad);
  m.impl("lrp_layer_norm", &LrpLayerNormNoGrad);
}

void EnsureLrpOpRegistered() {}

void BeginLrpTally() {
  std::lock_guard<std::mutex> lock(TheTally().mutex);
  TheTally().active = true;
  TheTally().absorbed = 0;
}

double EndLrpTally() {
  std::lock_guard<std::mutex> lock(TheTally().mutex);
  TheTally().active = false;
  return TheTally().absorbed;
}

}  // namespace netlens
