#include "netlens/optvis/lbfgs_rows.h"

namespace netlens::optvis {

template <typename T>
double LbfgsPass(T* v, const T* base, double scale, double coef, const T* add, const T* dot, int64_t n) {
  const T s = static_cast<T>(scale), c = static_cast<T>(coef);
  double sum = 0;
  if (add != nullptr && dot != nullptr) {
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; ++j) {
      const T x = s * (base[j] + c * add[j]);
      v[j] = x;
      sum += static_cast<double>(dot[j]) * static_cast<double>(x);
    }
  } else if (add != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) v[j] = s * (base[j] + c * add[j]);
  } else if (dot != nullptr) {
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; ++j) {
      const T x = s * base[j];
      v[j] = x;
      sum += static_cast<double>(dot[j]) * static_cast<double>(x);
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) v[j] = s * base[j];
  }
  return sum;
}

template double LbfgsPass<float>(float*, const float*, double, double, const float*, const float*, int64_t);
template double LbfgsPass<double>(double*, const double*, double, double, const double*, const double*, int64_t);

}  // namespace netlens::optvis
