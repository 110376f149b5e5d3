// DeepLIFT's rescale rule on one element and on rows of contiguous elements, and the division that
// ends its max-pooling rule: the arithmetic of the rectifier op's CPU kernels (model/rectifier_op.cpp),
// kept in a file of its own so that the row
// loops compile with -fno-trapping-math. Under GCC's default -ftrapping-math a comparison of floats
// may trap, so GCC keeps every `?:` on them as a branch and leaves the loop scalar; without it the
// rows vectorize. The option changes no result: netlens never reads the floating-point flags.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace netlens {

// Where input and reference agree (|a - r| < eps), the input's own local gradient (1 inside
// (low, high), else 0), else (f(a) - f(r)) / (a - r), f = clamp to [low, high]; computed either
// way, then chosen, without a branch. std::min(std::max(v, low), high) and std::abs written out, so
// that GCC vectorizes them (the same values: the same comparisons).
template <typename scalar_t>
struct Rescale {
  scalar_t low, high, eps;
  Rescale(double lo, double hi, double epsilon)
      : low(static_cast<scalar_t>(lo)),
        high(std::isinf(hi) ? std::numeric_limits<scalar_t>::infinity() : static_cast<scalar_t>(hi)),
        eps(static_cast<scalar_t>(epsilon)) {}
  scalar_t Multiplier(scalar_t a, scalar_t r) const {
    const scalar_t dx = a - r;
    const scalar_t ca = a < low ? low : a, fa = high < ca ? high : ca;
    const scalar_t cr = r < low ? low : r, fr = high < cr ? high : cr;
    const scalar_t m = (fa - fr) / dx;
    const scalar_t adx = dx < 0 ? -dx : dx;
    return adx < eps ? Local(a) : m;
  }
  // Multiplier(a, r) and Multiplier(r, a) from one division: (f(r) - f(a)) / (r - a) is
  // (f(a) - f(r)) / (a - r) to the bit (IEEE rounding is symmetric under negation).
  void PairMultipliers(scalar_t a, scalar_t r, scalar_t& ma, scalar_t& mr) const {
    const scalar_t dx = a - r;
    const scalar_t ca = a < low ? low : a, fa = high < ca ? high : ca;
    const scalar_t cr = r < low ? low : r, fr = high < cr ? high : cr;
    const scalar_t m = (fa - fr) / dx;
    const scalar_t adx = dx < 0 ? -dx : dx;
    ma = adx < eps ? Local(a) : m;
    mr = adx < eps ? Local(r) : m;
  }
  // f's own local gradient at a: 1 inside (low, high), else 0. With high = +inf, a < high holds
  // wherever the choice reads it (an infinite a cannot agree with a reference to within eps).
  scalar_t Local(scalar_t a) const { return static_cast<scalar_t>((a > low) & (a < high)); }
};

// Rows of `count` unit-stride elements (rescale_rows.cpp; float and double). Pairs: the input's
// gradient ga * m(a, r) into oa and the reference's gr * m(r, a) into orf. Inputs alone: oa only.
template <typename scalar_t>
void RescalePairRow(const scalar_t* xa, const scalar_t* xr, const scalar_t* ga, const scalar_t* gr, scalar_t* oa,
                    scalar_t* orf, int64_t count, Rescale<scalar_t> rule);
template <typename scalar_t>
void RescaleInputRow(const scalar_t* xa, const scalar_t* xr, const scalar_t* ga, scalar_t* oa, int64_t count,
                     Rescale<scalar_t> rule);

// The max-pooling rule's last step on a row: where input and reference differ (not |a - r| < eps),
// the routed shares over a - r. Pairs: both halves get (ga + gr) / (a - r), and each keeps its own
// where they agree. Inputs alone: ga / (a - r).
//
// One element of each, for the rows below and for strided layouts: a and r (the routed
// gradients) become their shares; the new values are chosen before either is stored, so that
// GCC vectorizes the rows' loops (it keeps a loop that stores under a condition scalar).
template <typename scalar_t>
inline void MaxPoolSharePair(scalar_t dx, scalar_t eps, scalar_t& a, scalar_t& r) {
  const scalar_t adx = dx < 0 ? -dx : dx, shared = (a + r) / dx;
  const scalar_t new_a = adx < eps ? a : shared;
  const scalar_t new_r = adx < eps ? r : shared;
  a = new_a;
  r = new_r;
}
template <typename scalar_t>
inline scalar_t MaxPoolShareInput(scalar_t dx, scalar_t eps, scalar_t a) {
  const scalar_t adx = dx < 0 ? -dx : dx, shared = a / dx;
  return adx < eps ? a : shared;
}
template <typename scalar_t>
void MaxPoolSharePairRow(const scalar_t* xa, const scalar_t* xr, scalar_t* ga, scalar_t* gr, int64_t count,
                         scalar_t eps);
template <typename scalar_t>
void MaxPoolShareInputRow(const scalar_t* xa, const scalar_t* xr, scalar_t* ga, int64_t count, scalar_t eps);

}  // namespace netlens
