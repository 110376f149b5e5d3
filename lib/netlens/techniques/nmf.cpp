#include "netlens/techniques/nmf.h"

#include <cmath>

#include "netlens/core/errors.h"

namespace netlens {

NmfResult Nmf(const torch::Tensor& v_in, const NmfOptions& options) {
  if (v_in.dim() != 2) throw InternalError("Nmf: V must be 2-D");
  const torch::Tensor v = v_in.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  if (!torch::isfinite(v).all().item<bool>() || v.min().item<double>() < 0)
    throw InternalError("Nmf: V must be finite and non-negative");
  const int64_t n = v.size(0), m = v.size(1), k = options.components;
  if (k < 1 || k > std::min(n, m))
    throw UsageError("factorization into " + std::to_string(k) + " groups: must be 1.." +
                     std::to_string(std::min(n, m)) + " (the smaller of positions and channels)");
  // Seeded start on the CPU generator of our own: scaled like scikit-learn's random init.
  auto gen = at::detail::createCPUGenerator(options.seed);
  const double scale = std::sqrt(std::max(v.mean().item<double>(), 1e-12) / static_cast<double>(k));
  torch::Tensor w = torch::rand({n, k}, gen, torch::kFloat64) * scale + 1e-3 * scale;
  torch::Tensor h = torch::rand({k, m}, gen, torch::kFloat64) * scale + 1e-3 * scale;
  NmfResult result;
  const double norm_v = std::max(v.norm().item<double>(), 1e-300);
  constexpr double kEps = 1e-12;
  for (int64_t it = 0; it < options.iterations; ++it) {
    // Numerator and denominator from the same iterate (never mul_ first: it would change w).
    const torch::Tensor h_ratio = w.t().mm(v) / (w.t().mm(w).mm(h) + kEps);
    h.mul_(h_ratio);
    const torch::Tensor w_ratio = v.mm(h.t()) / (w.mm(h.mm(h.t())) + kEps);
    w.mul_(w_ratio);
    // ||V - WH||^2 = ||V||^2 - 2 <W'V, H> + <W'W, HH'>: k x m and k x k products only.
    const double sq = norm_v * norm_v - 2 * (w.t().mm(v) * h).sum().item<double>() +
                      (w.t().mm(w) * h.mm(h.t())).sum().item<double>();
    result.errors.push_back(std::sqrt(std::max(sq, 0.0)) / norm_v);
    result.iterations = it + 1;
    const size_t e = result.errors.size();
    if (e > 10 && result.errors[e - 11] - result.errors[e - 1] < options.tolerance) break;
  }
  // Unit-norm loadings, scale moved into W; order by share of the reconstruction.
  const torch::Tensor norms = h.norm(2, 1).clamp_min(1e-300);
  h = h / norms.unsqueeze(1);
  w = w * norms.unsqueeze(0);
  const torch::Tensor share = w.sum(0) * h.abs().sum(1);
  const torch::Tensor order = std::get<1>(share.sort(0, /*descending=*/true));
  result.w = w.index_select(1, order).contiguous();
  result.h = h.index_select(0, order).contiguous();
  return result;
}

}  // namespace netlens
