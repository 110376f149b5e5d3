#include "netlens/optvis/style.h"

#include "netlens/core/errors.h"
#include "netlens/optvis/picture.h"

namespace netlens::optvis {
namespace F = torch::nn::functional;

namespace {

torch::Tensor Flat(const torch::Tensor& f) { return f.reshape({f.size(1), -1}); }  // C x hw

// F F^T / n with a backward of one matrix product instead of autograd's two for mm(F, F^T): the
// Gram matrix is symmetric in F, so dL/dF = (dL/dG + dL/dG^T) F / n. The products are most of a
// style step on small networks (SqueezeNet at 256 px: as long as the convolutions' forward and
// backward together).
class SelfGram : public torch::autograd::Function<SelfGram> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& flat) {
    ctx->save_for_backward({flat});
    return torch::mm(flat, flat.t()).div_(static_cast<double>(flat.numel()));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::Tensor flat = ctx->get_saved_variables()[0];
    const torch::Tensor& g = grads[0];
    return {torch::mm(g + g.t(), flat).div_(static_cast<double>(flat.numel()))};
  }
};

torch::Tensor Gram(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.is_same(b)) return SelfGram::apply(Flat(a).contiguous());
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
                                       at::Generator& generator) {
  std::vector<torch::Tensor> losses;
  for (size_t i = 0; i < features.size(); ++i) {
    const torch::Tensor& f = features[i];
    switch (metric) {
      case StyleMetric::kGram:
        losses.push_back((Gram(f, f) - target.stats[i]).pow(2).mean());
        break;
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
  }
  return losses;
}

}  // namespace netlens::optvis
