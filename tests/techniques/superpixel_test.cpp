// Oracles for the superpixel family (feature-ablation, kernel-shap, lime) and the surrogate
// regressions under it: exact Shapley values of a linear model, Shapley values by enumerating
// every coalition of a ReLU network, closed forms of least squares, ridge and lasso.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "netlens/core/errors.h"
#include "netlens/image/npy.h"
#include "netlens/runner/common_options.h"
#include "netlens/techniques/registry.h"
#include "netlens/techniques/superpixels.h"
#include "netlens/techniques/surrogate.h"
#include "tests/techniques/fixtures.h"

#include <ATen/CPUGeneratorImpl.h>

namespace netlens {
namespace {

using test::LinearModel;
using test::RunTechnique;

// 3x4x4 -> 16 -> relu -> 16 -> relu -> 3, float64: no two coalitions of its superpixels add up.
std::shared_ptr<Model> SmallReluNet() {
  torch::jit::Module m("SpMlp", test::SharedUnit(), true);
  m.register_parameter("w1", torch::randn({16, 3 * 4 * 4}, torch::kFloat64) * 0.5, false);
  m.register_parameter("b1", torch::randn({16}, torch::kFloat64) * 0.5, false);
  m.register_parameter("w2", torch::randn({3, 16}, torch::kFloat64) * 0.5, false);
  m.define(
      "def forward(self, x):\n"
      "    h = torch.relu(torch.matmul(torch.flatten(x, 1), self.w1.t()) + self.b1)\n"
      "    return torch.matmul(h, self.w2.t())\n");
  return test::SaveAndLoad(m, 3, 4, 4);
}

// Tile (2x2 tiles of 3x3 pixels on 6x6) of every pixel: what --segmentation grid --segments 4 makes.
torch::Tensor Tiles6() {
  const torch::Tensor r = torch::arange(6, torch::kLong).div(3, "floor");
  return r.view({-1, 1}) * 2 + r.view({1, -1});
}

// phi_s = sum over the pixels of tile s (all channels) of w (x - 0).
torch::Tensor LinearShapley(const LinearModel& lm, const torch::Tensor& x, int64_t target) {
  const torch::Tensor contribution = (lm.W[target].view_as(x) * x).sum(1)[0];  // 6 x 6
  return torch::zeros({4}, torch::kFloat64).index_add_(0, Tiles6().flatten(), contribution.flatten());
}

torch::Tensor PerTile(const torch::Tensor& map, const torch::Tensor& labels, int64_t k) {
  torch::Tensor out = torch::zeros({k}, torch::kFloat64);
  const torch::Tensor flat = labels.flatten();
  for (int64_t s = 0; s < k; ++s) out[s] = map[0][0].flatten().index({flat == s})[0];
  return out;
}

TEST(FeatureAblation, OfALinearModelIsEachTilesShareOfTheLogit) {
  torch::manual_seed(3);
  LinearModel lm(2, 6, 6, 3);
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  const auto out = RunTechnique("feature-ablation", *lm.model, x, 1, {{"segmentation", "grid"}, {"segments", 4}});
  ASSERT_EQ(out.metrics["superpixels"], 4);
  const torch::Tensor map = out.artifacts[0].tensor;
  EXPECT_TRUE(test::AllClose(PerTile(map, Tiles6(), 4), LinearShapley(lm, x, 1), 1e-12));
  // Every pixel of a tile, in every channel, carries the tile's value.
  EXPECT_TRUE(torch::equal(map[0][0], map[0][1]));
  EXPECT_TRUE(test::AllClose(map[0][0], LinearShapley(lm, x, 1).index_select(0, Tiles6().flatten()).view({6, 6}), 1e-12));
  ASSERT_GE(out.artifacts.size(), 3u);
  EXPECT_EQ(out.artifacts[1].kind, Artifact::Kind::kPicture);
  EXPECT_TRUE(torch::equal(out.artifacts[2].tensor.view({6, 6}).to(torch::kLong), Tiles6()));
}

TEST(KernelShap, OfALinearModelRecoversTheExactShapleyValues) {
  torch::manual_seed(4);
  LinearModel lm(2, 6, 6, 3);
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  const auto out = RunTechnique("kernel-shap", *lm.model, x, 2,
                                {{"segmentation", "grid"}, {"segments", 4}, {"samples", 40}, {"seed", 1}});
  EXPECT_TRUE(test::AllClose(PerTile(out.artifacts[0].tensor, Tiles6(), 4), LinearShapley(lm, x, 2), 1e-9));
  EXPECT_NEAR(out.metrics["efficiency"]["delta"].get<double>(), 0, 1e-9);
  EXPECT_NEAR(out.metrics["surrogate"]["r2"].get<double>(), 1, 1e-12);
}

// Shapley values of the 4 tiles of a 4x4 input by enumerating all 16 coalitions.
torch::Tensor EnumeratedShapley(Model& model, const torch::Tensor& x, int64_t target) {
  const int64_t k = 4;
  Superpixels sp;
  const torch::Tensor r = torch::arange(4, torch::kLong).div(2, "floor");
  sp.labels = r.view({-1, 1}) * 2 + r.view({1, -1});
  sp.count = k;
  torch::Tensor z = torch::zeros({16, k}, torch::kFloat64);
  for (int64_t m = 0; m < 16; ++m)
    for (int64_t s = 0; s < k; ++s) z[m][s] = static_cast<double>((m >> s) & 1);
  const torch::Tensor f = model.Logits(ComposeInputs(x, torch::zeros_like(x), sp, z)).select(1, target).detach();
  torch::Tensor phi = torch::zeros({k}, torch::kFloat64);
  const double fact[] = {1, 1, 2, 6, 24};
  for (int64_t s = 0; s < k; ++s)
    for (int64_t m = 0; m < 16; ++m) {
      if ((m >> s) & 1) continue;
      const int size = __builtin_popcountll(m);
      phi[s] += fact[size] * fact[k - size - 1] / fact[k] * (f[m | (1 << s)] - f[m]);
    }
  return phi;
}

TEST(KernelShap, ApproachesTheEnumeratedShapleyValuesOfAReluNetwork) {
  torch::manual_seed(5);
  auto model = SmallReluNet();
  const torch::Tensor x = torch::randn({1, 3, 4, 4}, torch::kFloat64);
  const torch::Tensor exact = EnumeratedShapley(*model, x, 0);
  const torch::Tensor r = torch::arange(4, torch::kLong).div(2, "floor");
  const torch::Tensor tiles = r.view({-1, 1}) * 2 + r.view({1, -1});
  // The ablation of one tile is not its Shapley value here: the network is not additive.
  const auto ablation = RunTechnique("feature-ablation", *model, x, 0, {{"segmentation", "grid"}, {"segments", 4}});
  ASSERT_GT((PerTile(ablation.artifacts[0].tensor, tiles, 4) - exact).norm().item<double>(), 1e-3 * exact.norm().item<double>());
  double previous = 1e9;
  for (int64_t samples : {12, 20000}) {
    const auto out = RunTechnique("kernel-shap", *model, x, 0,
                                  {{"segmentation", "grid"}, {"segments", 4}, {"samples", samples}, {"seed", 2}});
    const double error = ((PerTile(out.artifacts[0].tensor, tiles, 4) - exact).norm() / exact.norm()).item<double>();
    EXPECT_LT(error, previous) << samples;
    previous = error;
    // Sampled coalitions with the Shapley kernel's weights: efficiency holds (the end points weigh 1e6).
    EXPECT_LT(std::abs(out.metrics["efficiency"]["relative_delta"].get<double>()), 1e-4) << out.metrics.dump();
  }
  EXPECT_LT(previous, 0.02) << "the sampling error shrinks as 1 / sqrt(samples): 2.3% at 3000";
}

TEST(Lime, WithoutRegularizationRecoversALinearModelsShares) {
  torch::manual_seed(6);
  LinearModel lm(2, 6, 6, 3);
  const torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kFloat64);
  const auto out = RunTechnique("lime", *lm.model, x, 0,
                                {{"segmentation", "grid"}, {"segments", 4}, {"samples", 64}, {"regression", "linear"}});
  EXPECT_TRUE(test::AllClose(PerTile(out.artifacts[0].tensor, Tiles6(), 4), LinearShapley(lm, x, 0), 1e-9));
  // Lasso shrinks: a strong penalty leaves nothing; the same seed reproduces the fit.
  const auto shrunk = RunTechnique("lime", *lm.model, x, 0,
                                   {{"segmentation", "grid"}, {"segments", 4}, {"samples", 64}, {"alpha", 1e6}});
  EXPECT_EQ(shrunk.metrics["surrogate"]["nonzero"], 0);
  const auto a = RunTechnique("lime", *lm.model, x, 0, {{"segmentation", "grid"}, {"segments", 4}, {"samples", 64}, {"seed", 3}});
  const auto b = RunTechnique("lime", *lm.model, x, 0, {{"segmentation", "grid"}, {"segments", 4}, {"samples", 64}, {"seed", 3}});
  EXPECT_TRUE(torch::equal(a.artifacts[0].tensor, b.artifacts[0].tensor));
}

// Every on/off pattern of 3 features, each once: the centred columns are orthogonal with
// variance 1/4, so lasso is the soft-thresholded least-squares fit: beta_j = 4 soft(beta*_j / 4, alpha).
TEST(Surrogate, LassoRidgeAndLeastSquaresMatchTheirClosedForms) {
  torch::Tensor z = torch::zeros({8, 3}, torch::kFloat64);
  for (int64_t m = 0; m < 8; ++m)
    for (int64_t j = 0; j < 3; ++j) z[m][j] = static_cast<double>((m >> j) & 1);
  const torch::Tensor truth = torch::tensor({2.0, -0.2, 0.5}, torch::kFloat64);
  const torch::Tensor y = z.matmul(truth) + 0.7;
  const torch::Tensor ones = torch::ones({8}, torch::kFloat64);
  const SurrogateFit ls = FitSurrogate(z, y, ones, Regression::kLeastSquares, 0);
  EXPECT_TRUE(test::AllClose(ls.coefficients, truth, 1e-12));
  EXPECT_NEAR(ls.intercept, 0.7, 1e-12);
  const SurrogateFit lasso = FitSurrogate(z, y, ones * 3, Regression::kLasso, 0.1);  // weights scale out
  EXPECT_TRUE(test::AllClose(lasso.coefficients, torch::tensor({1.6, 0.0, 0.1}, torch::kFloat64), 1e-10));
  EXPECT_NEAR(lasso.intercept, (y.mean() - z.mean(0).matmul(lasso.coefficients)).item<double>(), 1e-12);
  // Ridge: sum_i w_i r_i^2 + alpha |beta|^2, with sum w_i xc_ij^2 = 8 / 4 = 2: beta_j = 2 beta*_j / (2 + alpha).
  const SurrogateFit ridge = FitSurrogate(z, y, ones, Regression::kRidge, 0.5);
  EXPECT_TRUE(test::AllClose(ridge.coefficients, truth * (2.0 / 2.5), 1e-12));
  // Two identical columns: least squares takes the minimum-norm split, as lstsq does.
  const torch::Tensor twin = torch::cat({z.slice(1, 0, 1), z.slice(1, 0, 1)}, 1);
  const SurrogateFit split = FitSurrogate(twin, twin.select(1, 0) * 2, ones, Regression::kLeastSquares, 0);
  EXPECT_TRUE(test::AllClose(split.coefficients, torch::tensor({1.0, 1.0}, torch::kFloat64), 1e-12));
}

// Share of pixels that lie in their superpixel's majority quadrant (quadrant borders at 20).
double Purity(const torch::Tensor& labels, int64_t count) {
  const torch::Tensor r = (torch::arange(48) >= 20).to(torch::kLong);
  const torch::Tensor quadrant = (r.view({-1, 1}) * 2 + r.view({1, -1})).flatten();
  const torch::Tensor joint = torch::bincount(labels.flatten() * 4 + quadrant, {}, count * 4).view({count, 4});
  return std::get<0>(joint.max(1)).sum().item<double>() / 2304.0;
}

TEST(Superpixels, SlicFollowsThePicturesEdgesAndOneRegionIsRefused) {
  torch::manual_seed(7);
  LinearModel lm(3, 48, 48, 2);
  // Four flat quadrants, borders at 20 (not on the 12-pixel grid of 16 regions), a little noise.
  torch::Tensor x = torch::zeros({1, 3, 48, 48}, torch::kFloat64);
  x.slice(2, 0, 20).slice(3, 0, 20).select(1, 0).fill_(1);
  x.slice(2, 20).slice(3, 20).select(1, 2).fill_(1);
  x.slice(2, 0, 20).slice(3, 20).select(1, 1).fill_(1);
  x += 0.02 * torch::randn_like(x);
  const auto grid = RunTechnique("feature-ablation", *lm.model, x, 0, {{"segmentation", "grid"}, {"segments", 16}});
  const double grid_purity = Purity(grid.artifacts[2].tensor.view({48, 48}).to(torch::kLong), 16);
  EXPECT_LT(grid_purity, 0.9);
  for (const char* method : {"slico", "slic"}) {
    const auto out = RunTechnique("feature-ablation", *lm.model, x, 0, {{"segmentation", method}, {"segments", 16}});
    const int64_t count = out.metrics["superpixels"].get<int64_t>();
    EXPECT_GE(count, 4) << method;
    EXPECT_LE(count, 48) << method;
    const torch::Tensor labels = out.artifacts[2].tensor.view({48, 48}).to(torch::kLong);
    EXPECT_EQ(labels.max().item<int64_t>() + 1, count) << method;
    EXPECT_EQ(std::get<0>(torch::_unique(labels)).numel(), count) << method;
    EXPECT_GT(Purity(labels, count), 0.95) << method << " cuts across the picture's edges (a grid: " << grid_purity << ")";
  }
  // One label everywhere explains nothing: a usage error naming the remedy.
  const std::string dir = test::TempDir("mask");
  test::WriteText(dir + "/one.npy", NpyBytes(torch::zeros({48, 48}, torch::kInt64)));
  try {
    RunTechnique("lime", *lm.model, x, 0, {{"feature_mask", dir + "/one.npy"}});
    FAIL() << "one superpixel was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("gives 1 superpixel"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("at least two different labels"), std::string::npos) << e.what();
  }
  // A mask given as data is used as it is (labels renumbered in raster order).
  test::WriteText(dir + "/halves.npy", NpyBytes((torch::arange(48).view({1, 48}) >= 24).expand({48, 48}).to(torch::kInt64) * 7));
  const auto halves = RunTechnique("feature-ablation", *lm.model, x, 0, {{"feature_mask", dir + "/halves.npy"}});
  EXPECT_EQ(halves.metrics["superpixels"], 2);
  test::WriteText(dir + "/small.npy", NpyBytes(torch::zeros({24, 48}, torch::kInt64)));
  EXPECT_THROW(RunTechnique("lime", *lm.model, x, 0, {{"feature_mask", dir + "/small.npy"}}), UsageError);
}

// Captum on SqueezeNet 1.0 with the same 49 tiles as a mask (tools/check_captum_superpixels.py).
struct CaptumSuperpixels {
  Json reference;
  std::shared_ptr<Model> model;
  torch::Tensor x;
  torch::Tensor tiles = torch::arange(224, torch::kLong).div(32, "floor");
  bool Load(const std::string& dtype) {
    model = test::SharedSqueezeNet(dtype);
    if (!model) return false;
    std::ifstream in(test::SourceDir() + "/tests/data/captum_superpixels_squeezenet.json");
    reference = Json::parse(in);
    auto gen = at::detail::createCPUGenerator(5);
    x = torch::randn({1, 3, 224, 224}, gen, torch::kFloat64).to(dtype == "float64" ? torch::kFloat64 : torch::kFloat32);
    tiles = tiles.view({-1, 1}) * 7 + tiles.view({1, -1});
    return true;
  }
  torch::Tensor Captum(const std::string& key) const {
    return torch::tensor(reference.at(key).get<std::vector<double>>(), torch::kFloat64);
  }
  torch::Tensor Netlens(const std::string& technique, Json options) {
    options["segmentation"] = "grid";
    options["segments"] = 49;
    const auto out = RunTechnique(technique, *model, x, reference.at("target").get<int64_t>(), options);
    return PerTile(out.artifacts[0].tensor.to(torch::kFloat64), tiles, 49);
  }
};

double Correlation(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor ac = a - a.mean(), bc = b - b.mean();
  return (ac.dot(bc) / (ac.norm() * bc.norm())).item<double>();
}

TEST(FeatureAblation, EqualsCaptumsOnSqueezeNet) {
  CaptumSuperpixels c;
  if (!c.Load("float64")) GTEST_SKIP() << "no shared models at " << test::SharedModels();
  EXPECT_TRUE(test::AllClose(c.Netlens("feature-ablation", {{"batch_size", 16}}), c.Captum("feature_ablation"), 1e-9));
}

// KernelShap and Lime sample from Captum's global generator, so the test takes the samples Captum
// drew and fitted (100 on/off vectors of the 49 tiles) as data: netlens' inputs for them give
// the same outputs, Lime's kernel the same weights, and netlens' surrogates (least squares for
// KernelShap, Lasso with alpha 0.01 for Lime) the coefficients scikit-learn finds in float64.
TEST(KernelShapAndLime, FitCaptumsSamplesAsCaptumDoes) {
  CaptumSuperpixels c;
  if (!c.Load("float64")) GTEST_SKIP() << "no shared models at " << test::SharedModels();
  const TechniqueInfo& lime = FindTechnique("lime");
  Diagnostics diag;
  const Json values = ValidateObject(Json::object(), {&lime.options}, "", nullptr, diag);
  Params params({&CommonOptions(), &lime.options}, values);
  InputImage input;
  input.tensor = c.x;
  TechniqueContext ctx{*c.model, input, c.reference.at("target").get<int64_t>(), params};
  Superpixels sp;
  sp.labels = c.tiles;
  sp.count = 49;
  for (const std::string name : {"kernel_shap", "lime"}) {
    const Json& r = c.reference.at(name);
    const auto rows = r.at("coalitions").get<std::vector<std::string>>();
    torch::Tensor z = torch::zeros({static_cast<int64_t>(rows.size()), 49}, torch::kFloat64);
    for (size_t i = 0; i < rows.size(); ++i)
      for (int64_t j = 0; j < 49; ++j) z[static_cast<int64_t>(i)][j] = rows[i][j] == '1' ? 1.0 : 0.0;
    const torch::Tensor outputs = torch::tensor(r.at("outputs").get<std::vector<double>>(), torch::kFloat64);
    const torch::Tensor weights = torch::tensor(r.at("weights").get<std::vector<double>>(), torch::kFloat64);
    const torch::Tensor expected = torch::tensor(r.at("coefficients").get<std::vector<double>>(), torch::kFloat64);
    const SuperpixelEvaluation e = EvaluateSuperpixels(ctx, torch::zeros_like(c.x), sp, z, 32, true);
    // Captum hands its surrogate float32 copies of outputs and weights.
    EXPECT_TRUE(torch::allclose(e.scores, outputs, 1e-6, 1e-6)) << name;
    SurrogateFit fit;
    if (name == "lime") {
      const torch::Tensor kernel = torch::exp(-e.cosine_distance.square() / 2);
      EXPECT_TRUE(torch::allclose(kernel, weights, 1e-6, 1e-7)) << name;
      fit = FitSurrogate(z, outputs, weights, Regression::kLasso, 0.01);
    } else {
      fit = FitSurrogate(z, outputs, weights, Regression::kLeastSquares, 0);
    }
    // scikit-learn's fit of the same samples in float64, converged (as netlens solves it), and
    // Captum's own result: its float32 least squares moves KernelShap's coefficients by 0.4% here,
    // its Lasso stops at tolerance 1e-4 (1e-4 away).
    const torch::Tensor exact = torch::tensor(r.at("coefficients_float64").get<std::vector<double>>(), torch::kFloat64);
    const double error = ((fit.coefficients - exact).norm() / exact.norm()).item<double>();
    EXPECT_LT(error, 1e-8) << name << ": netlens " << fit.coefficients.slice(0, 0, 5) << "\nscikit-learn "
                           << exact.slice(0, 0, 5);
    EXPECT_LT(((fit.coefficients - expected).norm() / expected.norm()).item<double>(), 1e-2) << name;
  }
}

}  // namespace
}  // namespace netlens
