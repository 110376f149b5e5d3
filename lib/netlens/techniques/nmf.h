// Non-negative matrix factorization, V (n x m, >= 0) ~ W (n x k) H (k x m), by Lee and Seung's
// multiplicative updates for the Frobenius norm (which never increase ||V - WH||), in float64,
// from a seeded non-negative start. Used for neuron groups ("Building Blocks of
// Interpretability", Olah et al. 2018): V = a layer's activations as (h*w) x channels.
#pragma once

#include "netlens/model/libtorch.h"

#include <cstdint>
#include <vector>

namespace netlens {

struct NmfOptions {
  int64_t components = 6;
  int64_t iterations = 300;
  uint64_t seed = 0;
  double tolerance = 1e-5;  // stop when the relative error improves by less over 10 iterations
};

struct NmfResult {
  torch::Tensor w;               // n x k, float64
  torch::Tensor h;               // k x m, float64; rows scaled to unit norm (W takes the scale)
  std::vector<double> errors;    // ||V - WH||_F / ||V||_F after each iteration
  int64_t iterations = 0;
};

// `v` must be 2-D, finite and non-negative (any dtype or device; computed on the CPU in float64).
// Components are ordered by their share of the reconstruction (sum of W[:, g] * |H[g]|), largest
// first, so that the same seed gives the same groups in the same order.
NmfResult Nmf(const torch::Tensor& v, const NmfOptions& options);

}  // namespace netlens
