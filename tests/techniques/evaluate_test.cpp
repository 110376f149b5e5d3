// evaluate's deletion and insertion scores on a linear model, against a hand computation in
// float64: pixels ranked by the saliency map (the weight row summed over channels), removed (or
// inserted into RISE's blur) in order, softmax of the closed-form logits, RISE's trapezoid area.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "netlens/core/errors.h"
#include "netlens/techniques/evaluate.h"
#include "netlens/techniques/common.h"
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

// Captum's definitions on a linear model: the gradient explains every perturbation exactly
// (infidelity 0) and does not move (sensitivity 0); input x gradient has closed forms.
TEST(Evaluate, InfidelityAndSensitivityOfALinearModelMatchTheClosedForms) {
  torch::manual_seed(3);
  LinearModel lm(2, 4, 5, 3);
  const torch::Tensor x = torch::randn({1, 2, 4, 5}, torch::kFloat64);
  const int64_t t = 1;
  const Json options{{"techniques", {"saliency", "input-x-gradient"}}, {"metric", {"infidelity", "sensitivity"}},
                     {"samples", 6}, {"noise", 0.3}, {"radius", 0.05}, {"seed", 9}, {"batch_size", 4}};
  const auto out = test::RunTechnique("evaluate", *lm.model, x, t, options);
  const Json& scores = out.metrics["scores"];
  ASSERT_EQ(scores.size(), 4u);
  const torch::Tensor w = lm.W[t].view({1, 2, 4, 5});
  EXPECT_NEAR(scores[0]["value"].get<double>(), 0, 1e-20);  // saliency infidelity
  EXPECT_NEAR(scores[1]["value"].get<double>(), 0, 1e-20);  // saliency sensitivity
  const torch::Tensor noise = SeededNormal(x, 6, 9) * 0.3;
  const torch::Tensor dots = (noise * x * w).reshape({6, -1}).sum(1);
  const torch::Tensor diffs = (noise * w).reshape({6, -1}).sum(1);  // f(x) - f(x - I)
  EXPECT_NEAR(scores[2]["value"].get<double>(), (dots - diffs).pow(2).mean().item<double>(), 1e-12);
  const torch::Tensor deltas = (SeededUniform(x.expand({6, -1, -1, -1}), 9) * 2 - 1) * 0.05;
  const double sens = ((deltas * w).reshape({6, -1}).norm(2, 1) / (x * w).norm()).max().item<double>();
  EXPECT_NEAR(scores[3]["value"].get<double>(), sens, 1e-12);
  EXPECT_EQ(scores[3]["metric"], "sensitivity");
}

// The same perturbations through Captum (captum.metrics.infidelity and sensitivity_max with
// Saliency(abs=False), float64, on this repository's Fashion-MNIST CNN and a seeded input): the
// values below were printed by Captum's current source under Debian's torch 1.13 (the noise is
// torch.randn / torch.rand from torch.Generator().manual_seed(11), the same stream as netlens'
// seeded draws). Script: docs/techniques.md, "Faithfulness".
TEST(Evaluate, InfidelityAndSensitivityEqualCaptumsOnTheBundledCnn) {
  ModelRequest request;
  request.path = test::SourceDir() + "/models/fashion_cnn.pt";
  request.device = "cpu";
  request.dtype = "float64";
  auto model = Model::Load(request);
  auto gen = at::detail::createCPUGenerator(5);
  const torch::Tensor x = torch::randn({1, 1, 28, 28}, gen, torch::kFloat64);
  ASSERT_EQ(model->Logits(x).argmax(1).item<int64_t>(), 8);
  const Json options{{"techniques", {"saliency"}}, {"metric", {"infidelity", "sensitivity"}},
                     {"samples", 8}, {"noise", 0.2}, {"radius", 0.05}, {"seed", 11}};
  const auto out = test::RunTechnique("evaluate", *model, x, 8, options);
  EXPECT_NEAR(out.metrics["scores"][0]["value"].get<double>(), 0.053385336963079705, 1e-12);
  EXPECT_NEAR(out.metrics["scores"][1]["value"].get<double>(), 0.1786819762490425, 1e-12);
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
  EXPECT_THROW(test::RunTechnique("evaluate", *lm.model, x, 0, {{"metric", {"roads"}}}), UsageError);
}


TEST(Evaluate, SpearmanUsesAverageRanksForTies) {
  const torch::Tensor a = torch::tensor({1.0, 2.0, 2.0, 3.0}, torch::kFloat64);
  EXPECT_NEAR(Spearman(a, torch::tensor({1.0, 3.0, 2.0, 4.0}, torch::kFloat64)), 4.5 / std::sqrt(22.5), 1e-15);
  const torch::Tensor r = torch::randn({50}, torch::kFloat64);
  EXPECT_NEAR(Spearman(r, r.exp() * 3 + 1), 1, 1e-15);  // any increasing function: 1
  EXPECT_NEAR(Spearman(r, -r.pow(3)), -1, 1e-15);
  EXPECT_EQ(Spearman(r, torch::zeros({50}, torch::kFloat64)), 0);  // no spread: 0
}

TEST(Evaluate, SsimOfConstantAndIdenticalMapsHasItsClosedForm) {
  const torch::Tensor m = torch::rand({20, 16}, torch::kFloat64);
  EXPECT_NEAR(Ssim(m, m), 1, 1e-12);
  // Constant maps c1, c2: no variance, SSIM = (2 c1 c2 + C1) / (c1^2 + c2^2 + C1) everywhere.
  const double c1 = 0.3, c2 = 0.7, C1 = 1e-4;
  EXPECT_NEAR(Ssim(torch::full({12, 12}, c1, torch::kFloat64), torch::full({12, 12}, c2, torch::kFloat64)),
              (2 * c1 * c2 + C1) / (c1 * c1 + c2 * c2 + C1), 1e-12);
  EXPECT_LT(Ssim(m, 1 - m), 0);  // anti-correlated structure
  EXPECT_NEAR(Ssim(m, 1 - m), Ssim(1 - m, m), 1e-12);
  EXPECT_THROW(Ssim(torch::rand({10, 30}), torch::rand({10, 30})), UsageError);
}

TEST(Evaluate, NoisyLinearImputationReproducesALinearImageExactly) {
  // The weighted neighbour mean of a linear function is its value at the centre, so removed
  // pixels away from the border come back exactly (without noise); kept pixels never change.
  const int64_t h = 9, w = 11;
  const torch::Tensor yy = torch::arange(h, torch::kFloat64).view({h, 1}).expand({h, w});
  const torch::Tensor xx = torch::arange(w, torch::kFloat64).view({1, w}).expand({h, w});
  const torch::Tensor x = torch::stack({0.5 * yy - 0.25 * xx + 1, -yy + 2 * xx}).unsqueeze(0);
  torch::Tensor remove = torch::zeros({h, w}, torch::kBool);
  remove.slice(0, 2, 7).slice(1, 3, 9).fill_(true);
  remove[1][1] = true;
  torch::Tensor damaged = x.clone();
  damaged.masked_fill_(remove.view({1, 1, h, w}).expand_as(x), 100.0);  // what was there must not matter
  const torch::Tensor out = NoisyLinearImpute(damaged, remove, 0, 1);
  EXPECT_TRUE(test::AllClose(out, x, 1e-12));
  // A corner pixel alone: the mean of its three neighbours, weights 1/6, 1/6, 1/12.
  torch::Tensor corner = torch::zeros({h, w}, torch::kBool);
  corner[0][0] = true;
  const torch::Tensor r = torch::rand({1, 1, h, w}, torch::kFloat64);
  const double want = (r[0][0][0][1].item<double>() / 6 + r[0][0][1][0].item<double>() / 6 +
                       r[0][0][1][1].item<double>() / 12) / (5.0 / 12);
  EXPECT_NEAR(NoisyLinearImpute(r, corner, 0, 1)[0][0][0][0].item<double>(), want, 1e-14);
  // Noise: only on removed pixels, with the given standard deviation.
  const torch::Tensor noisy = NoisyLinearImpute(damaged, remove, 0.5, 3) - x;
  EXPECT_EQ(noisy.masked_select(~remove.view({1, 1, h, w}).expand_as(x)).abs().max().item<double>(), 0);
  EXPECT_NEAR(noisy.masked_select(remove.view({1, 1, h, w}).expand_as(x)).std().item<double>(), 0.5, 0.1);
}

TEST(Evaluate, CascadingRandomizationGoesTopDownAndPutsTheModelBack) {
  ModelRequest request;
  request.path = test::SourceDir() + "/models/fashion_cnn.pt";
  request.device = "cpu";
  auto model = Model::Load(request);
  const torch::Tensor x = torch::randn({3, 1, 28, 28});
  const torch::Tensor before = model->Logits(x).clone();  // frozen, batched path
  const torch::Tensor one_before = model->Logits(x.slice(0, 0, 1)).clone();  // plain module
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (const auto& p : model->module().named_parameters()) params.push_back({p.name, p.value.clone()});
  {
    CascadingRandomization cascade(*model, 4);
    ASSERT_GE(cascade.layers().size(), 2u);
    // The first layer re-drawn is the one nearest the output: the classifier's last weights.
    const std::string top = cascade.layers()[0];
    cascade.Randomize(0);
    size_t changed = 0;
    for (const auto& p : model->module().named_parameters())
      for (const auto& [name, value] : params)
        if (name == p.name && !torch::equal(value, p.value)) {
          ++changed;
          EXPECT_EQ(name.rfind(top + ".", 0), 0u) << name << " changed, but only " << top << " was re-drawn";
        }
    EXPECT_GE(changed, 1u);
    EXPECT_FALSE(torch::allclose(model->Logits(x), before));  // the frozen copy follows the change
    EXPECT_FALSE(torch::allclose(model->Logits(x.slice(0, 0, 1)), one_before));
  }
  for (const auto& p : model->module().named_parameters())
    for (const auto& [name, value] : params)
      if (name == p.name) EXPECT_TRUE(torch::equal(value, p.value)) << name;
  EXPECT_TRUE(torch::equal(model->Logits(x), before));
  EXPECT_TRUE(torch::equal(model->Logits(x.slice(0, 0, 1)), one_before));
}

TEST(Evaluate, RoadAndRandomizationScoresOnALinearModel) {
  torch::manual_seed(5);
  LinearModel lm(2, 12, 12, 3);
  const torch::Tensor x = torch::randn({1, 2, 12, 12}, torch::kFloat64);
  const auto out = test::RunTechnique("evaluate", *lm.model, x, 1,
                                      {{"techniques", {"saliency", "input-x-gradient"}},
                                       {"metric", {"road", "randomization"}}, {"road_noise", 0.0}});
  const Json& scores = out.metrics["scores"];
  ASSERT_EQ(scores.size(), 4u);
  // ROAD without noise by hand: the same imputations, p(target) from the closed-form logits.
  const torch::Tensor map = lm.W[1].view({2, 12, 12}).sum(0).reshape({-1});  // the raw (signed) saliency
  const torch::Tensor order = std::get<1>(map.sort(true, 0, true));
  torch::Tensor rank = torch::empty({144}, torch::kLong);
  rank.index_put_({order}, torch::arange(144, torch::kLong));
  double morf = 0, lerf = 0;
  for (int64_t f = 1; f <= 9; ++f) {
    const int64_t k = (f * 144 + 5) / 10;
    for (bool most : {true, false}) {
      const torch::Tensor remove = (most ? rank < k : rank >= 144 - k).view({12, 12});
      const torch::Tensor xi = NoisyLinearImpute(x, remove, 0, 0);
      const double p = torch::softmax(xi.reshape({1, -1}).matmul(lm.W.t()) + lm.b, 1)[0][1].item<double>();
      (most ? morf : lerf) += p / 9;
    }
  }
  EXPECT_EQ(scores[0]["metric"], "road");
  EXPECT_NEAR(scores[0]["value"].get<double>(), (lerf - morf) / 2, 1e-12);
  // Randomization of the only layer: a new weight matrix, so saliency (= its row) ranks
  // pixels anew, and the model is the same afterwards.
  EXPECT_EQ(scores[2]["metric"], "randomization");
  EXPECT_LT(std::abs(scores[2]["value"].get<double>()), 0.5);
  EXPECT_TRUE(scores[2]["passes"].get<bool>());
  EXPECT_EQ(out.metrics["curves"]["saliency"]["randomization_spearman"].size(), 1u);
  EXPECT_TRUE(torch::equal(lm.model->module().attr("weight").toTensor(), lm.W));
}

}  // namespace
}  // namespace netlens
