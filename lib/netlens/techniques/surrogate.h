// Weighted linear surrogates of a model over on/off vectors of features, as Lime and KernelShap
// fit them (Captum trains scikit-learn's models; these solve the same problems):
//   least squares  min  sum_i w_i (y_i - b - z_i.beta)^2                (LinearRegression; the
//                  minimum-norm beta when the samples do not determine it, as lstsq gives)
//   ridge          min  sum_i w_i (y_i - b - z_i.beta)^2 + alpha |beta|^2  (Ridge)
//   lasso          min  1/2 sum_i s_i (y_i - b - z_i.beta)^2 + alpha |beta|_1, s = w / sum(w)
//                  (Lasso, by cyclic coordinate descent)
// The intercept b is never penalized (the data are centred with the weighted means).
#pragma once

#include "netlens/model/libtorch.h"

#include <string>
#include <vector>

namespace netlens {

enum class Regression { kLeastSquares, kRidge, kLasso };
Regression ParseRegression(const std::string& name);  // linear, ridge, lasso

struct SurrogateFit {
  torch::Tensor coefficients;  // k, float64
  double intercept = 0;
  double r2 = 0;               // weighted coefficient of determination of the fit
  int64_t iterations = 0;      // coordinate-descent sweeps (lasso)
};

// z: n x k, y: n, weights: n (all CPU, any floating or integer dtype).
SurrogateFit FitSurrogate(const torch::Tensor& z, const torch::Tensor& y, const torch::Tensor& weights,
                          Regression regression, double alpha);

}  // namespace netlens
