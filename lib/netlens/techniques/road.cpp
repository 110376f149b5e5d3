// ROAD's noisy linear imputation (Rong, Leemann et al., "A Consistent and Efficient Evaluation
// Strategy for Attribution Methods", ICML 2022), as its authors' imputations.py defines it: each
// removed pixel becomes the weighted mean of its in-image neighbours, removed or not, which makes
// one sparse symmetric system over the removed pixels; Eigen factors it once for all channels.
#include <Eigen/SparseCholesky>
#include <Eigen/SparseCore>

#include "netlens/core/errors.h"
#include "netlens/techniques/common.h"
#include "netlens/techniques/evaluate.h"

namespace netlens {

torch::Tensor NoisyLinearImpute(const torch::Tensor& x, const torch::Tensor& remove, double noise, uint64_t seed) {
  const int64_t c = x.size(1), h = x.size(2), w = x.size(3);
  const torch::Tensor image = x.detach().to(torch::kCPU, torch::kFloat64).reshape({c, h * w}).contiguous();
  const torch::Tensor mask = remove.to(torch::kCPU, torch::kBool).reshape({h * w}).contiguous();
  const bool* removed = mask.data_ptr<bool>();
  std::vector<int64_t> unknown;  // pixel of each equation
  std::vector<int64_t> index(h * w, -1);
  for (int64_t p = 0; p < h * w; ++p)
    if (removed[p]) {
      index[p] = static_cast<int64_t>(unknown.size());
      unknown.push_back(p);
    }
  if (unknown.empty()) return x.clone();
  if (static_cast<int64_t>(unknown.size()) == h * w)
    throw UsageError("ROAD: every pixel is removed; nothing is left to impute from");
  struct Neighbour {
    int dy, dx;
    double weight;
  };
  static constexpr Neighbour kNeighbours[] = {{1, 1, 1.0 / 12},  {0, 1, 1.0 / 6},  {-1, 1, 1.0 / 12},
                                              {1, -1, 1.0 / 12}, {0, -1, 1.0 / 6}, {-1, -1, 1.0 / 12},
                                              {1, 0, 1.0 / 6},   {-1, 0, 1.0 / 6}};
  const int64_t n = static_cast<int64_t>(unknown.size());
  const double* values = image.data_ptr<double>();
  std::vector<Eigen::Triplet<double>> entries;
  entries.reserve(n * 9);
  Eigen::MatrixXd rhs = Eigen::MatrixXd::Zero(n, c);
  for (int64_t e = 0; e < n; ++e) {
    const int64_t y = unknown[e] / w, xx = unknown[e] % w;
    double total = 0;  // weight of the neighbours inside the image
    for (const auto& nb : kNeighbours) {
      const int64_t ny = y + nb.dy, nx = xx + nb.dx;
      if (ny < 0 || nx < 0 || ny >= h || nx >= w) continue;
      total += nb.weight;
      const int64_t q = ny * w + nx;
      if (removed[q])
        entries.emplace_back(e, index[q], -nb.weight);
      else
        for (int64_t ch = 0; ch < c; ++ch) rhs(e, ch) += nb.weight * values[ch * h * w + q];
    }
    entries.emplace_back(e, e, total);
  }
  Eigen::SparseMatrix<double> system(n, n);
  system.setFromTriplets(entries.begin(), entries.end());
  Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>> solver(system);
  if (solver.info() != Eigen::Success) throw InternalError("ROAD: the imputation system could not be factored");
  const Eigen::MatrixXd solution = solver.solve(rhs);
  torch::Tensor out = image.clone();
  double* o = out.data_ptr<double>();
  const torch::Tensor jitter = SeededNormal(torch::zeros({1, c, n}, torch::kFloat64), 1, seed)[0] * noise;
  const double* j = jitter.data_ptr<double>();
  for (int64_t e = 0; e < n; ++e)
    for (int64_t ch = 0; ch < c; ++ch) o[ch * h * w + unknown[e]] = solution(e, ch) + j[ch * n + e];
  return out.view({1, c, h, w}).to(x.device(), x.scalar_type());
}

}  // namespace netlens
