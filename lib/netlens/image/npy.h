// The NumPy .npy format (version 1.0): what netlens writes every raw result as, so that
// `numpy.load` reads it directly.
#pragma once

#include "netlens/model/libtorch.h"

#include <string>

namespace netlens {

// The bytes of a .npy file holding `tensor` in C order with its own shape: little-endian float64
// for a float64 tensor, float32 for any other.
std::string NpyBytes(const torch::Tensor& tensor);

// Parses .npy bytes written by NpyBytes (float32 or float64, little-endian, C order); for tests
// and for reading baselines. Throws UsageError on anything else.
torch::Tensor ParseNpy(const std::string& bytes);

// The tensor in the .npy file `path`, read whole. Throws UsageError, led by `name` (e.g.
// `map "a.npy"`), when the file is missing, larger than `max_bytes` (`bound` says what that
// size stands for: "... is 3.1 MB, larger than <bound>"), or not a .npy ParseNpy reads.
torch::Tensor ReadNpyFile(const std::string& path, const std::string& name, double max_bytes,
                          const std::string& bound);

}  // namespace netlens
