// Compiled with -fno-trapping-math and -fopenmp-simd (lib/netlens/CMakeLists.txt): see rescale_rows.h.
#include "netlens/model/rescale_rows.h"

namespace netlens {

template <typename scalar_t>
void RescalePairRow(const scalar_t* __restrict xa, const scalar_t* __restrict xr, const scalar_t* __restrict ga,
                    const scalar_t* __restrict gr, scalar_t* __restrict oa, scalar_t* __restrict orf, int64_t count,
                    const Rescale<scalar_t> rule) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    oa[i] = ga[i] * rule.Multiplier(xa[i], xr[i]);
    orf[i] = gr[i] * rule.Multiplier(xr[i], xa[i]);
  }
}

template <typename scalar_t>
void RescaleInputRow(const scalar_t* __restrict xa, const scalar_t* __restrict xr, const scalar_t* __restrict ga,
                     scalar_t* __restrict oa, int64_t count, const Rescale<scalar_t> rule) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) oa[i] = ga[i] * rule.Multiplier(xa[i], xr[i]);
}

template void RescalePairRow<float>(const float*, const float*, const float*, const float*, float*, float*, int64_t,
                                    Rescale<float>);
template void RescalePairRow<double>(const double*, const double*, const double*, const double*, double*, double*,
                                     int64_t, Rescale<double>);
template void RescaleInputRow<float>(const float*, const float*, const float*, float*, int64_t, Rescale<float>);
template void RescaleInputRow<double>(const double*, const double*, const double*, double*, int64_t, Rescale<double>);

}  // namespace netlens
