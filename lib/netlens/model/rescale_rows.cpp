// Compiled with -fno-trapping-math and -fopenmp-simd (lib/netlens/CMakeLists.txt): see rescale_rows.h.
#include "netlens/model/rescale_rows.h"

namespace netlens {

template <typename scalar_t>
void RescalePairRow(const scalar_t* __restrict xa, const scalar_t* __restrict xr, const scalar_t* __restrict ga,
                    const scalar_t* __restrict gr, scalar_t* __restrict oa, scalar_t* __restrict orf, int64_t count,
                    const Rescale<scalar_t> rule) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    scalar_t ma, mr;
    rule.PairMultipliers(xa[i], xr[i], ma, mr);
    oa[i] = ga[i] * ma;
    orf[i] = gr[i] * mr;
  }
}

template <typename scalar_t>
void RescaleInputRow(const scalar_t* __restrict xa, const scalar_t* __restrict xr, const scalar_t* __restrict ga,
                     scalar_t* __restrict oa, int64_t count, const Rescale<scalar_t> rule) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) oa[i] = ga[i] * rule.Multiplier(xa[i], xr[i]);
}

template <typename scalar_t>
void MaxPoolSharePairRow(const scalar_t* __restrict xa, const scalar_t* __restrict xr, scalar_t* __restrict ga,
                         scalar_t* __restrict gr, int64_t count, const scalar_t eps) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    scalar_t a = ga[i], r = gr[i];
    MaxPoolSharePair(xa[i] - xr[i], eps, a, r);
    ga[i] = a;
    gr[i] = r;
  }
}

template <typename scalar_t>
void MaxPoolShareInputRow(const scalar_t* __restrict xa, const scalar_t* __restrict xr, scalar_t* __restrict ga,
                          int64_t count, const scalar_t eps) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) ga[i] = MaxPoolShareInput(xa[i] - xr[i], eps, ga[i]);
}

template void RescalePairRow<float>(const float*, const float*, const float*, const float*, float*, float*, int64_t,
                                    Rescale<float>);
template void RescalePairRow<double>(const double*, const double*, const double*, const double*, double*, double*,
                                     int64_t, Rescale<double>);
template void RescaleInputRow<float>(const float*, const float*, const float*, float*, int64_t, Rescale<float>);
template void RescaleInputRow<double>(const double*, const double*, const double*, double*, int64_t, Rescale<double>);

template void MaxPoolSharePairRow<float>(const float*, const float*, float*, float*, int64_t, float);
template void MaxPoolSharePairRow<double>(const double*, const double*, double*, double*, int64_t, double);
template void MaxPoolShareInputRow<float>(const float*, const float*, float*, int64_t, float);
template void MaxPoolShareInputRow<double>(const double*, const double*, double*, int64_t, double);

}  // namespace netlens
