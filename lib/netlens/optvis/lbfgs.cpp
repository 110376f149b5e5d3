#include "netlens/optvis/lbfgs.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <utility>

#include "netlens/optvis/lbfgs_rows.h"

namespace netlens::optvis {
namespace {

// LibTorch's LBFGSOptions defaults.
constexpr double kToleranceGrad = 1e-7;
constexpr double kToleranceChange = 1e-9;

// One LbfgsPass over the whole vector, in parallel: the partial sums of the threads' ranges added.
template <typename T>
double Pass(T* v, const T* base, double scale, double coef, const T* add, const T* dot, int64_t n) {
  constexpr int64_t kGrain = 1 << 15;
  return at::parallel_reduce(
      int64_t{0}, n, kGrain, 0.0,
      [&](int64_t begin, int64_t end, double ident) {
        return ident + LbfgsPass<T>(v + begin, base + begin, scale, coef, add ? add + begin : nullptr,
                                    dot ? dot + begin : nullptr, end - begin);
      },
      std::plus<double>());
}

}  // namespace

Lbfgs::Lbfgs(std::vector<torch::Tensor> params, double lr, int64_t history)
    : params_(std::move(params)), lr_(lr), history_(std::max<int64_t>(1, history)) {}

torch::Tensor Lbfgs::FlatGrad() const {
  std::vector<torch::Tensor> views;
  for (const auto& p : params_)
    views.push_back(p.grad().defined() ? p.grad().reshape({-1}) : torch::zeros({p.numel()}, p.options()));
  return torch::cat(views);  // a new tensor: kept as the previous gradient
}

void Lbfgs::Push(const torch::Tensor& y, const torch::Tensor& s, double ys) {
  if (static_cast<int64_t>(y_.size()) == history_) {
    y_.pop_front();
    s_.pop_front();
    ro_.pop_front();
  }
  y_.push_back(y);
  s_.push_back(s);
  ro_.push_back(1.0 / ys);
}

torch::Tensor Lbfgs::Direction(const torch::Tensor& g, bool fused) const {
  if (fused && !y_.empty() && g.is_cpu() && g.is_contiguous() &&
      (g.scalar_type() == torch::kFloat32 || g.scalar_type() == torch::kFloat64))
    return FusedDirection(g);
  const int64_t k = static_cast<int64_t>(y_.size());
  std::vector<double> al(static_cast<size_t>(k));
  torch::Tensor q = g.neg();
  for (int64_t i = k - 1; i >= 0; --i) {
    al[i] = s_[i].dot(q).item<double>() * ro_[i];
    q.add_(y_[i], -al[i]);
  }
  torch::Tensor r = q.mul(h_diag_);
  for (int64_t i = 0; i < k; ++i) {
    const double be = y_[i].dot(r).item<double>() * ro_[i];
    r.add_(s_[i], al[i] - be);
  }
  return r;
}

// The recursion with each update fused with the next dot product:
//   q = -g, a[k-1] = ro s[k-1].q;  for i = k-1..1: q -= a[i] y[i], a[i-1] = ro s[i-1].q
//   r = h (q - a[0] y[0]), b[0] = ro y[0].r;  for i = 0..k-2: r += (a[i] - b[i]) s[i], b[i+1] = ro y[i+1].r
//   r += (a[k-1] - b[k-1]) s[k-1]
torch::Tensor Lbfgs::FusedDirection(const torch::Tensor& g) const {
  const int64_t k = static_cast<int64_t>(y_.size()), n = g.numel();
  torch::Tensor v = torch::empty_like(g);
  std::vector<double> al(static_cast<size_t>(k)), be(static_cast<size_t>(k));
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "lbfgs_direction", [&] {
    scalar_t* out = v.data_ptr<scalar_t>();
    al[k - 1] = ro_[k - 1] * Pass<scalar_t>(out, g.data_ptr<scalar_t>(), -1.0, 0.0, nullptr, s_[k - 1].data_ptr<scalar_t>(), n);
    for (int64_t i = k - 1; i >= 1; --i)
      al[i - 1] = ro_[i - 1] * Pass<scalar_t>(out, out, 1.0, -al[i], y_[i].data_ptr<scalar_t>(), s_[i - 1].data_ptr<scalar_t>(), n);
    be[0] = ro_[0] * Pass<scalar_t>(out, out, h_diag_, -al[0], y_[0].data_ptr<scalar_t>(), y_[0].data_ptr<scalar_t>(), n);
    for (int64_t i = 0; i + 1 < k; ++i)
      be[i + 1] = ro_[i + 1] * Pass<scalar_t>(out, out, 1.0, al[i] - be[i], s_[i].data_ptr<scalar_t>(), y_[i + 1].data_ptr<scalar_t>(), n);
    Pass<scalar_t>(out, out, 1.0, al[k - 1] - be[k - 1], s_[k - 1].data_ptr<scalar_t>(), nullptr, n);
  });
  return v;
}

void Lbfgs::Step(const std::function<torch::Tensor()>& closure) {
  {
    torch::AutoGradMode grad_mode(true);
    closure();
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor g = FlatGrad();
  if (g.abs().max().item<double>() <= kToleranceGrad) return;
  ++iter_;
  if (iter_ == 1) {
    d_ = g.neg();  // the history is empty and h_diag_ 1 until the second step
  } else {
    const torch::Tensor y = g - prev_grad_;
    const torch::Tensor s = d_ * t_;
    const double ys = y.dot(s).item<double>();
    if (ys > 1e-10) {
      Push(y, s, ys);
      h_diag_ = ys / y.dot(y).item<double>();
    }
    d_ = Direction(g);
  }
  prev_grad_ = g;
  t_ = iter_ == 1 ? std::min(1.0, 1.0 / g.abs().sum().item<double>()) * lr_ : lr_;
  if (g.dot(d_).item<double>() > -kToleranceChange) return;
  int64_t offset = 0;
  for (auto& p : params_) {
    const int64_t count = p.numel();
    p.add_(d_.slice(0, offset, offset + count).reshape(p.sizes()), t_);
    offset += count;
  }
}

}  // namespace netlens::optvis
