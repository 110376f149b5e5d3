#include "netlens/techniques/surrogate.h"

#include <Eigen/Dense>

#include <cmath>

#include "netlens/core/errors.h"

namespace netlens {
namespace {

using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Eigen::VectorXd ToVector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU, torch::kFloat64).contiguous().flatten();
  return Eigen::Map<const Eigen::VectorXd>(c.data_ptr<double>(), c.numel());
}

// Cyclic coordinate descent on the centred data: s sums to 1.
Eigen::VectorXd Lasso(const Matrix& xc, const Eigen::VectorXd& yc, const Eigen::VectorXd& s, double alpha,
                      int64_t& sweeps) {
  const Eigen::Index k = xc.cols();
  Eigen::VectorXd beta = Eigen::VectorXd::Zero(k), r = yc;
  Eigen::VectorXd norms(k);
  for (Eigen::Index j = 0; j < k; ++j) norms[j] = (xc.col(j).array().square() * s.array()).sum();
  const double scale = std::max(std::sqrt((yc.array().square() * s.array()).sum()), 1e-300);
  for (sweeps = 1; sweeps <= 10000; ++sweeps) {
    double largest_step = 0;
    for (Eigen::Index j = 0; j < k; ++j) {
      if (norms[j] <= 0) continue;
      const double rho = (xc.col(j).array() * s.array() * r.array()).sum() + norms[j] * beta[j];
      const double next = (rho > alpha ? rho - alpha : rho < -alpha ? rho + alpha : 0.0) / norms[j];
      const double step = next - beta[j];
      if (step != 0) {
        r -= step * xc.col(j);
        beta[j] = next;
        largest_step = std::max(largest_step, std::abs(step) * std::sqrt(norms[j]));
      }
    }
    if (largest_step <= 1e-12 * scale) break;
  }
  return beta;
}

}  // namespace

Regression ParseRegression(const std::string& name) {
  if (name == "linear") return Regression::kLeastSquares;
  if (name == "ridge") return Regression::kRidge;
  if (name == "lasso") return Regression::kLasso;
  throw UsageError("unknown regression '" + name + "': choose linear, ridge or lasso");
}

SurrogateFit FitSurrogate(const torch::Tensor& z, const torch::Tensor& y, const torch::Tensor& weights,
                          Regression regression, double alpha) {
  const torch::Tensor zc = z.to(torch::kCPU, torch::kFloat64).contiguous();
  const Eigen::Index n = zc.size(0), k = zc.size(1);
  const Matrix x = Eigen::Map<const Matrix>(zc.data_ptr<double>(), n, k);
  const Eigen::VectorXd yv = ToVector(y), w = ToVector(weights);
  const double total = w.sum();
  if (!(total > 0)) throw UsageError("the surrogate's sample weights sum to " + std::to_string(total) + "; nothing to fit");
  const Eigen::VectorXd s = w / total;
  const Eigen::RowVectorXd x_mean = s.transpose() * x;
  const double y_mean = s.dot(yv);
  const Matrix xc = x.rowwise() - x_mean;
  const Eigen::VectorXd yc = yv.array() - y_mean;
  SurrogateFit fit;
  Eigen::VectorXd beta;
  if (regression == Regression::kLasso) {
    beta = Lasso(xc, yc, s, alpha, fit.iterations);
  } else {
    const Eigen::VectorXd root = w.array().sqrt();
    const Matrix a = root.asDiagonal() * xc;
    const Eigen::VectorXd b = root.cwiseProduct(yc);
    if (regression == Regression::kLeastSquares) {
      beta = a.completeOrthogonalDecomposition().solve(b);
    } else {
      Matrix normal = a.transpose() * a;
      normal.diagonal().array() += alpha;
      beta = normal.ldlt().solve(a.transpose() * b);
    }
  }
  const Eigen::VectorXd residual = yc - xc * beta;
  const double explained = (yc.array().square() * s.array()).sum();
  fit.r2 = explained > 0 ? 1 - (residual.array().square() * s.array()).sum() / explained : 1.0;
  fit.intercept = y_mean - x_mean.dot(beta);
  fit.coefficients = torch::from_blob(beta.data(), {k}, torch::kFloat64).clone();
  return fit;
}

}  // namespace netlens
