#include "netlens/optvis/style.h"

#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <type_traits>
#include <torch/nn/functional/upsampling.h>

#include "netlens/core/errors.h"
#include "netlens/optvis/picture.h"

namespace netlens::optvis {
namespace F = torch::nn::functional;

namespace {

torch::Tensor Flat(const torch::Tensor& f) { return f.reshape({f.size(1), -1}); }  // C x hw

// BLAS's symmetric rank-k update (syrk) and symmetric matrix product (symm) from the BLAS the
// process already has (LibTorch's: OpenBLAS, MKL or the netlib reference, which all carry the
// CBLAS interface), looked up at run time rather than linked, so a build without one still runs.
// CBLAS' enumerations as ints.
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kUpper = 121, kLeft = 141, kRight = 142;
template <typename T>
using SyrkFn = void (*)(int order, int uplo, int trans, int n, int k, T alpha, const T* a, int lda, T beta, T* c,
                        int ldc);
template <typename T>
using SymmFn = void (*)(int order, int side, int uplo, int m, int n, T alpha, const T* a, int lda, const T* b,
                        int ldb, T beta, T* c, int ldc);
template <typename Fn>
Fn Blas(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}
template <typename T>
SyrkFn<T> Syrk() {
  static const SyrkFn<T> fn = Blas<SyrkFn<T>>(std::is_same<T, float>::value ? "cblas_ssyrk" : "cblas_dsyrk");
  return fn;
}
template <typename T>
SymmFn<T> Symm() {
  static const SymmFn<T> fn = Blas<SymmFn<T>>(std::is_same<T, float>::value ? "cblas_ssymm" : "cblas_dsymm");
  return fn;
}

// Below this many channels OpenBLAS's syrk takes longer than the general product that computes
// both triangles (2 threads, its SkylakeX and Haswell kernels on a Zen 5: 96 x 11881 (SqueezeNet's
// first convolution at 224 px) 1.03 ms against 0.73 ms, 192 x 729 0.18 against 0.15; from 256
// channels syrk is a quarter to a third faster, 512 x 961 0.87 against 1.27 ms).
constexpr int64_t kSyrkFromChannels = 256;

// The upper triangle of the n x n `g` copied to the lower one, in 16 x 16 tiles, so that the
// writes to (j, i) stay within a few cache lines' rows (row by row they write a column per row).
template <typename T>
void Mirror(T* g, int64_t n) {
  constexpr int64_t kTile = 16;
  for (int64_t i0 = 0; i0 < n; i0 += kTile)
    for (int64_t j0 = i0; j0 < n; j0 += kTile)
      for (int64_t i = i0; i < std::min(n, i0 + kTile); ++i)
        for (int64_t j = std::max(j0, i + 1); j < std::min(n, j0 + kTile); ++j) g[j * n + i] = g[i * n + j];
}

template <typename T>
torch::Tensor SymmetricProductOf(const torch::Tensor& m, bool rows, double scale, bool mirror) {
  const int64_t n = m.size(rows ? 1 : 0);
  const SyrkFn<T> syrk = Syrk<T>();
  if (n < kSyrkFromChannels || !syrk) {
    torch::Tensor out = (rows ? torch::mm(m.t(), m) : torch::mm(m, m.t())).mul_(scale);
    if (mirror) Mirror(out.data_ptr<T>(), n);  // exactly symmetric, as syrk's mirrored triangle
    return out;
  }
  const int k = static_cast<int>(m.size(rows ? 0 : 1));
  torch::Tensor out = torch::empty({n, n}, m.options());
  T* g = out.data_ptr<T>();
  syrk(kRowMajor, kUpper, rows ? kTrans : kNoTrans, static_cast<int>(n), k, static_cast<T>(scale), m.data_ptr<T>(),
       static_cast<int>(m.size(1)), T(0), g, static_cast<int>(n));
  if (mirror) Mirror(g, n);
  return out;
}

// Whether SymmetricProduct serves `m`: a contiguous CPU float or double matrix with sizes within
// int (CBLAS' sizes).
bool SymmetricProductServes(const torch::Tensor& m) {
  return m.is_cpu() && m.is_contiguous() && m.dim() == 2 && m.size(0) <= INT_MAX && m.size(1) <= INT_MAX &&
         (m.scalar_type() == torch::kFloat32 || m.scalar_type() == torch::kFloat64);
}

// scale * M M^T (or M^T M with `rows`) of a contiguous CPU matrix: from kSyrkFromChannels on by
// one syrk, which computes one triangle of the product, half a general product's arithmetic, then
// mirrors it (without `mirror`, only the upper triangle is set); below, or without a CBLAS syrk in
// the process, by a general product. Undefined where SymmetricProductServes does not.
torch::Tensor SymmetricProduct(const torch::Tensor& m, bool rows, double scale, bool mirror = true) {
  if (!SymmetricProductServes(m)) return {};
  return m.scalar_type() == torch::kFloat32 ? SymmetricProductOf<float>(m, rows, scale, mirror)
                                            : SymmetricProductOf<double>(m, rows, scale, mirror);
}

// The upper triangle of `g` (c x c) minus `t`'s, in place (the lower one is left as it is);
// returns the sum of the squares of all c^2 differences (each row's in T, in the vector lanes, the
// rows' in double).
template <typename T>
double SubtractUpper(T* g, const T* t, int64_t c) {
  double diagonal = 0, off = 0;
  for (int64_t i = 0; i < c; ++i) {
    T* row = g + i * c;
    const T* target = t + i * c;
    row[i] -= target[i];
    diagonal += static_cast<double>(row[i]) * row[i];
    T part = 0;
#pragma omp simd reduction(+ : part)
    for (int64_t j = i + 1; j < c; ++j) {
      const T e = row[j] - target[j];
      row[j] = e;
      part += e * e;
    }
    off += part;
  }
  return diagonal + 2 * off;
}

// coef * (rows ? M D : D M) for the symmetric D of which only the upper triangle is set: one symm
// (BLAS's product with a symmetric matrix, which reads one triangle); without one in the process,
// the triangle mirrored first and a general product.
template <typename T>
torch::Tensor SymmetricTimes(const torch::Tensor& m, const torch::Tensor& d, bool rows, double coef) {
  const int64_t c = d.size(0);
  const SymmFn<T> symm = Symm<T>();
  if (!symm) {
    Mirror(d.data_ptr<T>(), c);
    return (rows ? torch::mm(m, d) : torch::mm(d, m)).mul_(coef);
  }
  torch::Tensor out = torch::empty_like(m);
  symm(kRowMajor, rows ? kRight : kLeft, kUpper, static_cast<int>(m.size(0)), static_cast<int>(m.size(1)),
       static_cast<T>(coef), d.data_ptr<T>(), static_cast<int>(c), m.data_ptr<T>(), static_cast<int>(m.size(1)), T(0),
       out.data_ptr<T>(), static_cast<int>(m.size(1)));
  return out;
}

// F F^T / n with a backward of one matrix product instead of autograd's two for mm(F, F^T): the
// Gram matrix is symmetric in F, so dL/dF = (dL/dG + dL/dG^T) F / n. The products are most of a
// style step on small networks (SqueezeNet at 256 px: as long as the convolutions' forward and
// backward together). `rows`: the features come as their transpose, hw x C (a channels-last
// activation's memory), so G = X^T X / n and dL/dX = X (dL/dG + dL/dG^T) / n, and the gradient
// keeps the activation's layout: no transposing copy either way.
class SelfGram : public torch::autograd::Function<SelfGram> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& m, bool rows) {
    ctx->save_for_backward({m});
    ctx->saved_data["rows"] = rows;
    torch::Tensor gram = SymmetricProduct(m, rows, 1.0 / static_cast<double>(m.numel()));
    if (!gram.defined()) gram = (rows ? torch::mm(m.t(), m) : torch::mm(m, m.t())).div_(static_cast<double>(m.numel()));
    return gram;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::Tensor m = ctx->get_saved_variables()[0];
    // 1/n on the C x C factor rather than on the activation-sized product: one pass fewer.
    const torch::Tensor s = (grads[0] + grads[0].t()).div_(static_cast<double>(m.numel()));
    const torch::Tensor grad = ctx->saved_data["rows"].toBool() ? torch::mm(m, s) : torch::mm(s, m);
    return {grad, torch::Tensor()};
  }
};

// scale * mean((F F^T / n - T)^2), the Gram style loss, as one operation: the Gram matrix by
// SymmetricProduct (syrk from 256 channels), then its difference D from the target and the sum of
// squares in one pass over the upper triangle; backward dL/dF = 4 scale / (C^2 n) D F (D is
// symmetric), one symm on D's upper triangle with the coefficient as its factor (neither the
// mirrored triangle nor the scaled D is ever written: on MobileNet v2's 576 channels those two
// C x C passes took as long as the Gram product). In autograd's operations the same loss is a
// subtraction, a square, a mean and a scaling, each with its backward, per layer and step.
// `rows` as SelfGram. For matrices SymmetricProductServes.
class GramDistance : public torch::autograd::Function<GramDistance> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& m,
                               const torch::Tensor& target, bool rows, double scale) {
    const int64_t c = m.size(rows ? 1 : 0);
    torch::Tensor d = SymmetricProduct(m, rows, 1.0 / static_cast<double>(m.numel()), /*mirror=*/false);
    const torch::Tensor t = target.to(m.scalar_type()).contiguous();
    double sum = 0;
    AT_DISPATCH_FLOATING_TYPES(m.scalar_type(), "gram_distance", [&] {
      sum = SubtractUpper<scalar_t>(d.data_ptr<scalar_t>(), t.data_ptr<scalar_t>(), c);
    });
    ctx->save_for_backward({m, d});
    ctx->saved_data["rows"] = rows;
    ctx->saved_data["coef"] = 4 * scale / (static_cast<double>(c) * c * static_cast<double>(m.numel()));
    return torch::full({}, scale * sum / (static_cast<double>(c) * c), m.options());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const double coef = grads[0].item<double>() * ctx->saved_data["coef"].toDouble();
    const bool rows = ctx->saved_data["rows"].toBool();
    torch::Tensor grad;
    AT_DISPATCH_FLOATING_TYPES(saved[0].scalar_type(), "gram_distance_backward", [&] {
      grad = SymmetricTimes<scalar_t>(saved[0], saved[1], rows, coef);
    });
    return {grad, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// An activation (1 x C x H x W) as the matrix whose self-product is its Gram matrix, from its
// memory as it is: a channels-last one read as hw x C (`rows`), else C x hw.
std::pair<torch::Tensor, bool> GramFactor(const torch::Tensor& f) {
  if (f.dim() == 4 && f.size(0) == 1 && !f.is_contiguous() && f.is_contiguous(torch::MemoryFormat::ChannelsLast))
    return {f.permute({0, 2, 3, 1}).reshape({-1, f.size(1)}), true};
  return {Flat(f).contiguous(), false};
}

torch::Tensor SelfGramOf(const torch::Tensor& f) {
  const auto [m, rows] = GramFactor(f);
  return SelfGram::apply(m, rows);
}

// scale * mean((Gram(f) - target)^2): one GramDistance where it serves.
torch::Tensor GramLoss(const torch::Tensor& f, const torch::Tensor& target, double scale) {
  const auto [m, rows] = GramFactor(f);
  if (SymmetricProductServes(m) && target.dim() == 2 && target.size(0) == m.size(rows ? 1 : 0) && target.size(1) == target.size(0))
    return GramDistance::apply(m, target, rows, scale);
  const torch::Tensor loss = (SelfGram::apply(m, rows) - target).pow(2).mean();
  return scale == 1 ? loss : loss * scale;
}

torch::Tensor Gram(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.is_same(b)) return SelfGramOf(a);
  const torch::Tensor fa = Flat(a), fb = Flat(b);
  return torch::matmul(fa, fb.t()) / static_cast<double>(fa.numel());
}

// Sorted projections of C x n features on the columns of `dirs` (C x K): K x n.
torch::Tensor SortedProjections(const torch::Tensor& flat, const torch::Tensor& dirs) {
  return std::get<0>(torch::sort(torch::matmul(dirs.t(), flat), 1));
}

}  // namespace

StyleMetric ParseStyleMetric(const std::string& name) {
  if (name == "gram") return StyleMetric::kGram;
  if (name == "moments") return StyleMetric::kMoments;
  if (name == "cross") return StyleMetric::kCross;
  if (name == "sliced-wasserstein") return StyleMetric::kSlicedWasserstein;
  throw UsageError("unknown style metric " + name + "; use gram, moments, cross or sliced-wasserstein");
}

StyleTarget StyleStatistics(const std::vector<torch::Tensor>& features, StyleMetric metric) {
  StyleTarget t;
  for (size_t i = 0; i < features.size(); ++i) {
    const torch::Tensor& f = features[i];
    switch (metric) {
      case StyleMetric::kGram:
        t.stats.push_back(Gram(f, f).detach());
        break;
      case StyleMetric::kMoments: {
        const torch::Tensor flat = Flat(f);
        t.stats.push_back(torch::stack({flat.mean(1), flat.std(1, /*unbiased=*/false)}).detach());
        break;
      }
      case StyleMetric::kCross:
        t.stats.push_back(i + 1 < features.size() ? Gram(f, Resized(features[i + 1], f.size(2), f.size(3))).detach()
                                                  : torch::zeros({}, f.options()));
        break;
      case StyleMetric::kSlicedWasserstein:
        t.stats.push_back(Flat(f).detach());
        break;
    }
  }
  return t;
}

std::vector<torch::Tensor> StyleLosses(const std::vector<torch::Tensor>& features,
                                       const StyleTarget& target, StyleMetric metric,
                                       at::Generator& generator, const std::vector<double>& scales) {
  std::vector<torch::Tensor> losses;
  for (size_t i = 0; i < features.size(); ++i) {
    const torch::Tensor& f = features[i];
    const double scale = i < scales.size() ? scales[i] : 1.0;
    switch (metric) {
      case StyleMetric::kGram:
        losses.push_back(GramLoss(f, target.stats[i], scale));
        continue;  // scaled inside
      case StyleMetric::kMoments: {
        const torch::Tensor flat = Flat(f);
        const torch::Tensor m = torch::stack({flat.mean(1), flat.std(1, false)});
        losses.push_back((m - target.stats[i]).pow(2).mean(1).sum());
        break;
      }
      case StyleMetric::kCross:
        losses.push_back(i + 1 < features.size()
                             ? (Gram(f, Resized(features[i + 1], f.size(2), f.size(3))) - target.stats[i]).pow(2).mean()
                             : torch::zeros({}, f.options()));
        break;
      case StyleMetric::kSlicedWasserstein: {
        const torch::Tensor flat = Flat(f);
        const int64_t c = flat.size(0);
        torch::Tensor dirs = torch::randn({c, c}, generator, torch::kFloat64).to(flat.device(), flat.scalar_type());
        dirs = dirs / dirs.norm(2, {0}, true);
        const torch::Tensor mine = SortedProjections(flat, dirs);
        torch::Tensor theirs = SortedProjections(target.stats[i], dirs);
        if (theirs.size(1) != mine.size(1))  // resample the style's sorted values to our count
          theirs = F::interpolate(theirs.unsqueeze(0), F::InterpolateFuncOptions()
                                                           .size(std::vector<int64_t>{mine.size(1)})
                                                           .mode(torch::kLinear)
                                                           .align_corners(true)).squeeze(0);
        losses.push_back((mine - theirs).pow(2).mean());
        break;
      }
    }
    if (scale != 1) losses.back() = losses.back() * scale;
  }
  return losses;
}

}  // namespace netlens::optvis
