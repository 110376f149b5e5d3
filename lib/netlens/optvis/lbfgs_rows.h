// One pass of L-BFGS's two-loop recursion over contiguous elements (optvis/lbfgs.h), in a file of
// its own compiled with -fopenmp-simd, so that its sum vectorizes (`omp simd reduction` allows
// the reordering; GCC keeps a floating-point sum scalar otherwise). No LibTorch here.
#pragma once

#include <cstdint>

namespace netlens::optvis {

// v = scale * (base + coef * add) elementwise (add may be null: coef ignored), then the sum of
// dot * v (in T within blocks, the blocks' sums in double) (0 where dot is null). v may be base.
template <typename T>
double LbfgsPass(T* v, const T* base, double scale, double coef, const T* add, const T* dot, int64_t n);

}  // namespace netlens::optvis
