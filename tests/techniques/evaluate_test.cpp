// evaluate's deletion and insertion scores on a linear model, against a hand computation in
// float64: pixels ranked by the saliency map (the weight row summed over channels), removed (or
// inserted into RISE's blur) in order, softmax of the closed-form logits, RISE's trapezoid area.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "netlens/core/errors.h"
#include "netlens/techniques/evaluate.h"
#include "tests/techniques/fixtures.h"

namespace netlens {
namespace {

using test::LinearModel;

// The whole curve by hand for a linear model: logits = flatten(x) W^T + b.
std::vector<double> HandCurve(const LinearModel& lm, const torch::Tensor& x, const torch::Tensor& from,
                              const torch::Tensor& to, int64_t target, int64_t steps) {
  const int64_t c = x.size(1), h = x.size(2), w = x.size(3), n = h * w;
  const torch::Tensor map = lm.W[target].view({c, h, w}).sum(0).reshape({n});
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return map[a].item<double>() > map[b].item<double>(); });
  std::vector<double> curve;
  for (int64_t i = 0; i <= steps; ++i) {
    const int64_t k = static_cast<int64_t>(std::llround(static_cast<double>(i) * n / steps));
    torch::Tensor xi = from.clone().view({c, n});
    for (int64_t j = 0; j < k; ++j) xi.select(1, order[j]).copy_(to.view({c, n}).select(1, order[j]));
    const torch::Tensor logits = xi.reshape({1, -1}).matmul(lm.W.t()) + lm.b;
    curve.push_back(torch::softmax(logits, 1)[0][target].item<double>());
  }
  return curve;
}

double HandAuc(const std::vector<double>& v) {
  double s = 0;
  for (size_t i = 0; i + 1 < v.size(); ++i) s += (v[i] + v[i + 1]) / 2;
  return s / static_cast<double>(v.size() - 1);
}

torch::Tensor HandBlur(const torch::Tensor& x) {
  // Gaussian 11 x 11, sigma 5, separable, zero padding, per channel.
  std::vector<double> g(11);
  double total = 0;
  for (int i = 0; i < 11; ++i) total += g[i] = std::exp(-(i - 5) * (i - 5) / 50.0);
  const int64_t c = x.size(1), h = x.size(2), w = x.size(3);
  torch::Tensor out = torch::zeros_like(x);
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t xx = 0; xx < w; ++xx) {
        double s = 0;
        for (int dy = -5; dy <= 5; ++dy)
          for (int dx = -5; dx <= 5; ++dx) {
            const int64_t yy = y + dy, xc = xx + dx;
            if (yy < 0 || yy >= h || xc < 0 || xc >= w) continue;
            s += g[dy + 5] * g[dx + 5] / (total * total) * x[0][ch][yy][xc].item<double>();
          }
        out[0][ch][y][xx] = s;
      }
  return out;
}

TEST(Evaluate, DeletionAndInsertionOfALinearModelMatchTheHandComputation) {
  torch::manual_seed(7);
  LinearModel lm(2, 4, 5, 3);
  const torch::Tensor x = torch::randn({1, 2, 4, 5}, torch::kFloat64);
  for (int64_t target : {0, 2}) {
    const auto out = test::RunTechnique("evaluate", *lm.model, x, target,
                                        {{"techniques", {"saliency"}}, {"steps", 7}, {"batch_size", 3}});
    const Json& scores = out.metrics["scores"];
    ASSERT_EQ(scores.size(), 2u);
    const auto deletion = HandCurve(lm, x, x, torch::zeros_like(x), target, 7);
    const auto insertion = HandCurve(lm, x, HandBlur(x), x, target, 7);
    const auto got_del = out.metrics["curves"]["saliency"]["deletion"].get<std::vector<double>>();
    const auto got_ins = out.metrics["curves"]["saliency"]["insertion"].get<std::vector<double>>();
    ASSERT_EQ(got_del.size(), 8u);
    for (size_t i = 0; i < 8; ++i) {
      EXPECT_NEAR(got_del[i], deletion[i], 1e-12) << "deletion step " << i;
      EXPECT_NEAR(got_ins[i], insertion[i], 1e-12) << "insertion step " << i;
    }
    EXPECT_EQ(scores[0]["metric"], "deletion");
    EXPECT_NEAR(scores[0]["value"].get<double>(), HandAuc(deletion), 1e-12);
    EXPECT_FALSE(scores[0]["higher_is_better"].get<bool>());
    EXPECT_NEAR(scores[1]["value"].get<double>(), HandAuc(insertion), 1e-12);
  }
}

TEST(Evaluate, RiseAucIsTheTrapezoid) {
  EXPECT_DOUBLE_EQ(RiseAuc({1, 0}), 0.5);
  EXPECT_DOUBLE_EQ(RiseAuc({0, 1, 1, 1, 0}), 0.75);
}

TEST(Evaluate, TechniquesWithoutAMapAreUsageErrors) {
  torch::manual_seed(7);
  LinearModel lm(2, 4, 5, 3);
  const torch::Tensor x = torch::randn({1, 2, 4, 5}, torch::kFloat64);
  EXPECT_THROW(test::RunTechnique("evaluate", *lm.model, x, 0, {{"techniques", {"gist"}}}), UsageError);
  EXPECT_THROW(test::RunTechnique("evaluate", *lm.model, x, 0, {{"metric", {"road"}}}), UsageError);
}

}  // namespace
}  // namespace netlens
