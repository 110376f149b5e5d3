#include "netlens/optvis/lbfgs_rows.h"

namespace netlens::optvis {

// The dot product is summed in T within blocks of kBlock elements (in the vector lanes) and the
// blocks' sums in double: converting every product to double halved the lanes and made the pass
// compute-bound (a full history of 100 at 224 x 224: 10 ms a step against 6.6 ms, which is this
// CPU's memory bandwidth). A block's float sum of 256 products errs by about 1e-6 of its size.
template <typename T>
double LbfgsPass(T* v, const T* base, double scale, double coef, const T* add, const T* dot, int64_t n) {
  constexpr int64_t kBlock = 256;
  const T s = static_cast<T>(scale), c = static_cast<T>(coef);
  double sum = 0;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t end = begin + kBlock < n ? begin + kBlock : n;
    T part = 0;
    if (add != nullptr && dot != nullptr) {
#pragma omp simd reduction(+ : part)
      for (int64_t j = begin; j < end; ++j) {
        const T x = s * (base[j] + c * add[j]);
        v[j] = x;
        part += dot[j] * x;
      }
    } else if (add != nullptr) {
#pragma omp simd
      for (int64_t j = begin; j < end; ++j) v[j] = s * (base[j] + c * add[j]);
    } else if (dot != nullptr) {
#pragma omp simd reduction(+ : part)
      for (int64_t j = begin; j < end; ++j) {
        const T x = s * base[j];
        v[j] = x;
        part += dot[j] * x;
      }
    } else {
#pragma omp simd
      for (int64_t j = begin; j < end; ++j) v[j] = s * base[j];
    }
    sum += static_cast<double>(part);
  }
  return sum;
}

template double LbfgsPass<float>(float*, const float*, double, double, const float*, const float*, int64_t);
template double LbfgsPass<double>(double*, const double*, double, double, const double*, const double*, int64_t);

}  // namespace netlens::optvis
